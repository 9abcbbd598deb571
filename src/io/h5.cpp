// HDF5 helpers implementation.
#include "io/h5.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "tensor/error.hpp"

namespace mt::h5 {

namespace {

struct Quiet {
  Quiet() {
    // No clean-up at exit: after a failed write (a full disk) HDF5's own exit handler would
    // close the broken file again and crash; every file here is closed by its owner.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
};
const Quiet quiet_hdf5;  // errors become exceptions, not stack dumps on stderr

// The system's reason for a failed write (HDF5 leaves the write's errno), for messages; callers
// clear errno before the call.
std::string reason() {
  return errno ? fmt::format(" ({})", std::strerror(errno)) : "";
}

// Whether an HDF5 write call (errno cleared before it) failed: its result, or a failed write(2)
// it did not report. HDF5 1.10 in SWMR mode returns success from H5Dwrite and H5Fflush after
// pwrite failed with ENOSPC (seen with strace on a full tmpfs): the rows were lost, not written.
bool write_failed(herr_t result) {
  return result < 0 || errno == ENOSPC || errno == EDQUOT || errno == EIO || errno == EFBIG ||
         errno == EROFS;
}

// Closes an HDF5 handle when it leaves scope.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
  operator hid_t() const { return id; }
  hid_t release() { return std::exchange(id, -1); }
};

std::vector<hsize_t> dims_of(const Shape& s) {
  std::vector<hsize_t> d(s.ndim());
  for (int i = 0; i < s.ndim(); ++i) d[i] = hsize_t(s[i]);
  return d;
}

Handle link_creation_props() {
  Handle p{H5Pcreate(H5P_LINK_CREATE), H5Pclose};
  H5Pset_create_intermediate_group(p, 1);
  return p;
}

// Whole arrays are chunked (up to chunk_elements a chunk, whole rows) with HDF5's Fletcher32
// checksum on every chunk, which every read verifies; an empty array cannot be chunked.
Handle checksummed(const std::vector<hsize_t>& dims, int64_t chunk_elements) {
  Handle dcpl{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  hsize_t n = 1;
  for (hsize_t d : dims) n *= d;
  if (dims.empty() || n == 0) return dcpl;
  std::vector<hsize_t> chunk = dims;
  const hsize_t row = n / dims[0];
  chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], hsize_t(chunk_elements) / row));
  H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
  H5Pset_fletcher32(dcpl);
  return dcpl;
}

void write_raw(const File& f, const std::string& name, hid_t type, const void* data,
               const Shape& shape, int64_t chunk_elements = int64_t(1) << 20) {
  auto dims = dims_of(shape);
  Handle space{H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose};
  Handle lcpl = link_creation_props();
  Handle dcpl = checksummed(dims, chunk_elements);
  errno = 0;
  Handle ds{H5Dcreate2(f.id(), name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose};
  MT_CHECK(ds >= 0, "{}: cannot create dataset {}{}", f.path(), name, reason());
  MT_CHECK(!write_failed(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data)),
           "{}: cannot write dataset {}{}", f.path(), name, reason());
  MT_CHECK(!write_failed(H5Dclose(ds.release())), "{}: cannot write dataset {}{}", f.path(), name,
           reason());
}

Handle open_dataset(const File& f, const std::string& name) {
  MT_CHECK(f.exists(name), "{}: no dataset {}", f.path(), name);
  Handle ds{H5Dopen2(f.id(), name.c_str(), H5P_DEFAULT), H5Dclose};
  MT_CHECK(ds >= 0, "{}: cannot open dataset {}", f.path(), name);
  return ds;
}

void check_shape(const File& f, const std::string& name, const Shape& expected) {
  const Shape s = shape_of(f, name);
  MT_CHECK(s == expected, "{}: dataset {} has shape {}, expected {}", f.path(), name, s.str(),
           expected.str());
}

// The whole dataset as `type` (HDF5 converts, and verifies the checksums).
void read_whole(const File& f, const std::string& name, hid_t type, void* data) {
  Handle ds = open_dataset(f, name);
  MT_CHECK(H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0,
           "{}: cannot read dataset {} (its checksum does not match, or the file is damaged)",
           f.path(), name);
}

template <typename T>
std::vector<T> read_vector(const File& f, const std::string& name, hid_t type) {
  std::vector<T> out(shape_of(f, name).numel());
  read_whole(f, name, type, out.data());
  return out;
}

Handle open_object(const File& f, const std::string& object) {
  Handle o{H5Oopen(f.id(), object.c_str(), H5P_DEFAULT), H5Oclose};
  MT_CHECK(o >= 0, "{}: cannot open {} (missing, or the file is damaged)", f.path(), object);
  return o;
}

void write_attr(const File& f, const std::string& object, const std::string& key, hid_t type,
                hid_t space, const void* v) {
  Handle o = open_object(f, object);
  if (H5Aexists(o, key.c_str()) > 0) H5Adelete(o, key.c_str());
  errno = 0;
  Handle a{H5Acreate2(o, key.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  MT_CHECK(a >= 0 && H5Awrite(a, type, v) >= 0, "{}: cannot write attribute {}:{}{}", f.path(),
           object, key, reason());
}

Handle open_attr(const File& f, const std::string& object, const std::string& key) {
  Handle o = open_object(f, object);
  MT_CHECK(H5Aexists(o, key.c_str()) > 0, "{}: missing attribute '{}' on {}", f.path(), key,
           object);
  return Handle{H5Aopen(o, key.c_str(), H5P_DEFAULT), H5Aclose};
}

// Only files whose metadata carries checksums are handed to HDF5 (superblock version 2 and up,
// the format written above): a damaged byte in them fails a checksum, while HDF5 1.10 parses the
// older format's metadata unchecked, and leaks or segfaults on damaged files of it
// (fuzz_checkpoint found one: fuzz/regressions/checkpoint/hdf5_v0_segv.h5).
void check_superblock(const std::string& path) {
  char head[9] = {};
  std::ifstream(path, std::ios::binary).read(head, sizeof head);
  MT_CHECK(std::memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0,
           "{}: cannot open HDF5 file (not HDF5, truncated or unreadable)", path);
  MT_CHECK(head[8] >= 2,
           "{}: HDF5 file without metadata checksums (superblock version {}; moetrain writes 3 and "
           "reads no older): write it again with this moetrain (token files: moetrain prepare), "
           "or with h5py's libver='latest'",
           path, int(head[8]));
}

}  // namespace

File::File(const std::string& path, Mode mode) : path_(path) {
  const bool create = mode == Create;
  MT_CHECK(create || std::filesystem::exists(path), "{}: no such file", path);
  errno = 0;
  Handle fapl{H5Pcreate(H5P_FILE_ACCESS), H5Pclose};
  if (create) {
    // HDF5 1.10's file format: checksums on all metadata, and what SWMR writing needs.
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
    id_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  } else {
    check_superblock(path);
    if (mode == Read) H5Pset_metadata_read_attempts(fapl, 1);
    id_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
  }
  MT_CHECK(id_ >= 0, "{}: cannot {} HDF5 file{}", path, create ? "create" : "open",
           create ? (errno ? reason() : " (is the folder writable?)")
                  : " (not HDF5, truncated or unreadable)");
}

File::~File() {
  if (id_ >= 0) H5Fclose(id_);
}

bool File::exists(const std::string& object) const {
  if (object == "/") return true;
  // Check each prefix: H5Lexists fails on a path whose parent is missing.
  for (size_t pos = object.find('/', 1);; pos = object.find('/', pos + 1)) {
    const std::string prefix = object.substr(0, pos);
    if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

void File::flush() const {
  errno = 0;
  MT_CHECK(!write_failed(H5Fflush(id_, H5F_SCOPE_GLOBAL)), "{}: flush failed{}", path_, reason());
}

void File::start_swmr() const {
  MT_CHECK(H5Fstart_swmr_write(id_) >= 0, "{}: cannot start SWMR writing", path_);
}

void File::rename_to(const std::string& path) {
  std::error_code ec;
  std::filesystem::rename(path_, path, ec);
  MT_CHECK(!ec, "{}: cannot rename {} to it: {}", path, path_, ec.message());
  path_ = path;
}

void write(const File& f, const std::string& name, const float* data, const Shape& shape) {
  write_raw(f, name, H5T_NATIVE_FLOAT, data, shape);
}

void write(const File& f, const std::string& name, const int32_t* data, const Shape& shape,
           int64_t chunk_elements) {
  write_raw(f, name, H5T_NATIVE_INT32, data, shape, chunk_elements);
}

void write(const File& f, const std::string& name, const uint8_t* data, const Shape& shape) {
  write_raw(f, name, H5T_NATIVE_UINT8, data, shape);
}

Shape shape_of(const File& f, const std::string& name) {
  Handle ds = open_dataset(f, name);
  Handle space{H5Dget_space(ds), H5Sclose};
  const int n = H5Sget_simple_extent_ndims(space);
  MT_CHECK(n >= 0 && n <= Shape::kMaxDims, "{}: dataset {} has {} dims", f.path(), name, n);
  hsize_t d[Shape::kMaxDims] = {};
  H5Sget_simple_extent_dims(space, d, nullptr);
  // No more elements than the file stores (chunks hold at least their data): a header claiming
  // more is refused before anything is allocated for it.
  Handle type{H5Dget_type(ds), H5Tclose};
  hsize_t bytes = H5Tget_size(type);
  bool overflow = false;
  for (int i = 0; i < n; ++i) overflow |= __builtin_mul_overflow(bytes, d[i], &bytes);
  MT_CHECK(!overflow && bytes <= H5Dget_storage_size(ds),
           "{}: dataset {} claims more elements than the file stores", f.path(), name);
  switch (n) {
    case 0:
      return Shape{};
    case 1:
      return Shape{int64_t(d[0])};
    case 2:
      return Shape{int64_t(d[0]), int64_t(d[1])};
    case 3:
      return Shape{int64_t(d[0]), int64_t(d[1]), int64_t(d[2])};
    default:
      return Shape{int64_t(d[0]), int64_t(d[1]), int64_t(d[2]), int64_t(d[3])};
  }
}

void read(const File& f, const std::string& name, float* data, const Shape& expected) {
  check_shape(f, name, expected);
  read_whole(f, name, H5T_NATIVE_FLOAT, data);
}

void read_rows(const File& f, const std::string& name, float* data, const Shape& local,
               int64_t global_rows, int64_t row_offset) {
  const Shape whole = local.with_first(global_rows);
  if (whole == local) return read(f, name, data, local);
  check_shape(f, name, whole);
  Handle ds = open_dataset(f, name);
  Handle space{H5Dget_space(ds), H5Sclose};
  std::vector<hsize_t> start(local.ndim(), 0), count = dims_of(local);
  start[0] = hsize_t(row_offset);
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Handle mem{H5Screate_simple(int(count.size()), count.data(), nullptr), H5Sclose};
  MT_CHECK(
      H5Dread(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, data) >= 0,
      "{}: cannot read rows of dataset {} (its checksum does not match, or the file is damaged)",
      f.path(), name);
}

std::vector<int32_t> read_i32(const File& f, const std::string& name) {
  return read_vector<int32_t>(f, name, H5T_NATIVE_INT32);
}

Int32Slices::Int32Slices(const std::string& path, const std::string& name, size_t cache_bytes)
    : file_(path, File::Read), name_(name) {
  const Shape shape = shape_of(file_, name);
  MT_CHECK(shape.ndim() == 1, "{}: dataset {} has shape {}, expected one dimension", path, name,
           shape.str());
  size_ = shape[0];
  Handle dapl{H5Pcreate(H5P_DATASET_ACCESS), H5Pclose};
  H5Pset_chunk_cache(dapl, 521, cache_bytes, 1.0);  // 521 slots: a prime, as HDF5 advises
  dataset_ = H5Dopen2(file_.id(), name.c_str(), dapl);
  MT_CHECK(dataset_ >= 0, "{}: cannot open dataset {}", path, name);
  space_ = H5Dget_space(dataset_);
}

Int32Slices::~Int32Slices() {
  if (space_ >= 0) H5Sclose(space_);
  if (dataset_ >= 0) H5Dclose(dataset_);
}

void Int32Slices::read(int64_t offset, int64_t count, int32_t* out) const {
  MT_CHECK(offset >= 0 && count >= 0 && offset + count <= size_,
           "{}: elements [{}, {}) of dataset {} outside its {}", file_.path(), offset,
           offset + count, name_, size_);
  const hsize_t start = hsize_t(offset), n = hsize_t(count);
  Handle memory{H5Screate_simple(1, &n, nullptr), H5Sclose};
  const bool ok = H5Sselect_hyperslab(space_, H5S_SELECT_SET, &start, nullptr, &n, nullptr) >= 0 &&
                  H5Dread(dataset_, H5T_NATIVE_INT32, memory, space_, H5P_DEFAULT, out) >= 0;
  MT_CHECK(ok,
           "{}: cannot read elements [{}, {}) of dataset {} (its checksum does not match, or "
           "the file is damaged)",
           file_.path(), offset, offset + count, name_);
}

std::vector<uint8_t> read_u8(const File& f, const std::string& name) {
  return read_vector<uint8_t>(f, name, H5T_NATIVE_UINT8);
}

std::vector<double> read_f64(const File& f, const std::string& name) {
  return read_vector<double>(f, name, H5T_NATIVE_DOUBLE);
}

void set_attr(const File& f, const std::string& object, const std::string& key,
              const std::string& v) {
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type, std::max<size_t>(v.size(), 1));
  H5Tset_cset(type, H5T_CSET_UTF8);
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  write_attr(f, object, key, type, space, v.c_str());
}

void set_attr(const File& f, const std::string& object, const std::string& key, int64_t v) {
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  write_attr(f, object, key, H5T_NATIVE_INT64, space, &v);
}

void set_attr(const File& f, const std::string& object, const std::string& key, double v) {
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  write_attr(f, object, key, H5T_NATIVE_DOUBLE, space, &v);
}

void make_group(const File& f, const std::string& name) {
  if (f.exists(name)) return;
  Handle lcpl = link_creation_props();
  Handle g{H5Gcreate2(f.id(), name.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Gclose};
  MT_CHECK(g >= 0, "{}: cannot create group {}", f.path(), name);
}

std::string attr_string(const File& f, const std::string& object, const std::string& key) {
  Handle a = open_attr(f, object, key);
  Handle type{H5Aget_type(a), H5Tclose};
  MT_CHECK(H5Tget_class(type) == H5T_STRING, "{}: attribute {}:{} is not a string", f.path(),
           object, key);
  MT_CHECK(!H5Tis_variable_str(type), "{}: attribute {}:{} is a variable-length string", f.path(),
           object, key);
  std::string s(H5Tget_size(type), '\0');
  MT_CHECK(H5Aread(a, type, s.data()) >= 0, "{}: cannot read attribute {}:{}", f.path(), object,
           key);
  s.resize(s.find('\0') == std::string::npos ? s.size() : s.find('\0'));
  return s;
}

// A scalar attribute read as `type` (HDF5 converts between numeric types).
template <typename T>
T read_scalar_attr(const File& f, const std::string& object, const std::string& key, hid_t type) {
  Handle a = open_attr(f, object, key);
  T v{};
  MT_CHECK(H5Aread(a, type, &v) >= 0, "{}: cannot read attribute {}:{}", f.path(), object, key);
  return v;
}

int64_t attr_int(const File& f, const std::string& object, const std::string& key) {
  return read_scalar_attr<int64_t>(f, object, key, H5T_NATIVE_INT64);
}

double attr_double(const File& f, const std::string& object, const std::string& key) {
  return read_scalar_attr<double>(f, object, key, H5T_NATIVE_DOUBLE);
}

std::vector<std::string> datasets(const File& f) {
  struct Visit {
    static herr_t op(hid_t group, const char* name, const H5L_info_t*, void* data) {
      Handle o{H5Oopen(group, name, H5P_DEFAULT), H5Oclose};
      if (o >= 0 && H5Iget_type(o) == H5I_DATASET)
        static_cast<std::vector<std::string>*>(data)->push_back(std::string("/") + name);
      return 0;
    }
  };
  std::vector<std::string> out;
  MT_CHECK(H5Lvisit(f.id(), H5_INDEX_NAME, H5_ITER_INC, &Visit::op, &out) >= 0,
           "{}: cannot list datasets", f.path());
  return out;
}

bool has_attr(const File& f, const std::string& object, const std::string& key) {
  if (!f.exists(object)) return false;
  Handle o = open_object(f, object);
  return H5Aexists(o, key.c_str()) > 0;
}

void create_series(const File& f, const std::string& name, int64_t width,
                   const std::vector<double>& rows) {
  const int rank = width > 0 ? 2 : 1;
  const hsize_t w = hsize_t(std::max<int64_t>(width, 1));
  hsize_t dims[2] = {rows.size() / w, w}, maxdims[2] = {H5S_UNLIMITED, w}, chunk[2] = {256, w};
  Handle space{H5Screate_simple(rank, dims, maxdims), H5Sclose};
  Handle dcpl{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  H5Pset_chunk(dcpl, rank, chunk);
  Handle lcpl = link_creation_props();
  errno = 0;
  Handle ds{H5Dcreate2(f.id(), name.c_str(), H5T_NATIVE_DOUBLE, space, lcpl, dcpl, H5P_DEFAULT),
            H5Dclose};
  MT_CHECK(ds >= 0, "{}: cannot create dataset {}{}", f.path(), name, reason());
  MT_CHECK(rows.empty() ||
               H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()) >= 0,
           "{}: cannot write dataset {}{}", f.path(), name, reason());
  MT_CHECK(!write_failed(H5Dclose(ds.release())), "{}: cannot write dataset {}{}", f.path(), name,
           reason());
}

int64_t append(const File& f, const std::string& name, const std::vector<double>& values) {
  Handle ds = open_dataset(f, name);
  hsize_t old[2] = {0, 1};
  int rank = 0;
  {
    Handle space{H5Dget_space(ds), H5Sclose};
    rank = H5Sget_simple_extent_ndims(space);
    H5Sget_simple_extent_dims(space, old, nullptr);
  }
  if (values.empty()) return int64_t(old[0]);
  const hsize_t w = rank == 2 ? old[1] : 1, rows = values.size() / w;
  MT_CHECK(rows * w == values.size(), "{}: {} values do not fill rows of {} in {}", f.path(),
           values.size(), w, name);
  hsize_t grown[2] = {old[0] + rows, w};
  errno = 0;
  MT_CHECK(!write_failed(H5Dset_extent(ds, grown)), "{}: cannot extend {}{}", f.path(), name,
           reason());
  Handle space{H5Dget_space(ds), H5Sclose};
  hsize_t start[2] = {old[0], 0}, count[2] = {rows, w};
  H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr);
  Handle mem{H5Screate_simple(rank, count, nullptr), H5Sclose};
  // A failed write takes its rows back off (the extent shrinks to what was there), so that a
  // reader never sees rows that hold no values (zeros where a full disk lost them).
  auto fail_back = [&](hid_t d) {
    const std::string why = reason();
    H5Dset_extent(d, old);
    fail("{}: cannot append to {}{}", f.path(), name, why);
  };
  if (write_failed(H5Dwrite(ds, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, values.data())))
    fail_back(ds);
  // Closing writes the chunks (and reports a failed write only through errno).
  if (write_failed(H5Dclose(ds.release()))) fail_back(open_dataset(f, name));
  return int64_t(old[0]);
}

void truncate(const File& f, const std::string& name, int64_t rows) {
  Handle ds = open_dataset(f, name);
  hsize_t dims[2] = {0, 1};
  Handle space{H5Dget_space(ds), H5Sclose};
  H5Sget_simple_extent_dims(space, dims, nullptr);
  dims[0] = hsize_t(rows);
  MT_CHECK(H5Dset_extent(ds, dims) >= 0, "{}: cannot cut {} back to {} rows", f.path(), name, rows);
}

}  // namespace mt::h5

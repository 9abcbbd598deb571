// Thin RAII layer over the HDF5 C API: files, whole-array datasets, growing 1-D series,
// attributes. Every failure throws mt::Error naming the file and the object. Files are read in
// HDF5's single-writer/multiple-reader (SWMR) mode, so a file another process is writing in that
// mode (a live results file, or one a killed run left marked as open) reads consistently.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace mt::h5 {

class File {
 public:
  // Create truncates an existing file and writes HDF5 1.10's format (checksums on all metadata,
  // SWMR writing possible). Read refuses files without such checksums and fails at the first
  // one that does not match; ReadLive, for a file another process may be writing (a live
  // results file), retries a mismatch as SWMR readers do (HDF5's default: 100 tries, which on a
  // damaged file take minutes).
  enum Mode { Read, ReadLive, Create };
  File(const std::string& path, Mode mode);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  hid_t id() const { return id_; }
  const std::string& path() const { return path_; }
  bool exists(const std::string& object) const;
  void flush() const;
  // From here on only existing datasets may grow (no new objects or attributes), while readers
  // may open the file (h5py: swmr=True).
  void start_swmr() const;
  // Renames the open file (rename(2), atomic on one filesystem).
  void rename_to(const std::string& path);

 private:
  hid_t id_ = -1;
  std::string path_;
};

// Whole arrays, each chunk (up to 2^20 elements, whole rows; int32 arrays: chunk_elements) with a
// Fletcher32 checksum that reads verify (a damaged dataset fails to read, by name); parent groups
// are created as needed. Shapes are checked on read.
void write(const File& f, const std::string& name, const float* data, const Shape& shape);
void write(const File& f, const std::string& name, const int32_t* data, const Shape& shape,
           int64_t chunk_elements = int64_t(1) << 20);
void write(const File& f, const std::string& name, const uint8_t* data, const Shape& shape);
Shape shape_of(const File& f, const std::string& name);
void read(const File& f, const std::string& name, float* data, const Shape& expected);
// Rows [row_offset, row_offset + local[0]) of a dataset of shape [global_rows, local[1:]].
void read_rows(const File& f, const std::string& name, float* data, const Shape& local,
               int64_t global_rows, int64_t row_offset);
std::vector<int32_t> read_i32(const File& f, const std::string& name);
// A 1-D int32 dataset read piece by piece (hyperslabs) from a file it keeps open, `cache_bytes`
// of its decoded chunks kept between reads (each chunk's checksum is verified as it is read).
class Int32Slices {
 public:
  Int32Slices(const std::string& path, const std::string& name, size_t cache_bytes);
  ~Int32Slices();
  Int32Slices(const Int32Slices&) = delete;
  Int32Slices& operator=(const Int32Slices&) = delete;
  int64_t size() const { return size_; }
  // Elements [offset, offset + count) into out.
  void read(int64_t offset, int64_t count, int32_t* out) const;

 private:
  File file_;
  std::string name_;
  hid_t dataset_ = -1, space_ = -1;
  int64_t size_ = 0;
};
std::vector<uint8_t> read_u8(const File& f, const std::string& name);
// Any dataset as doubles, row-major.
std::vector<double> read_f64(const File& f, const std::string& name);

// Attributes on the object at `object` ("/" for the root).
void set_attr(const File& f, const std::string& object, const std::string& key,
              const std::string& v);
void set_attr(const File& f, const std::string& object, const std::string& key, int64_t v);
void set_attr(const File& f, const std::string& object, const std::string& key, double v);
// Creates the group (and its parents) if missing.
void make_group(const File& f, const std::string& name);
std::string attr_string(const File& f, const std::string& object, const std::string& key);
int64_t attr_int(const File& f, const std::string& object, const std::string& key);
double attr_double(const File& f, const std::string& object, const std::string& key);
bool has_attr(const File& f, const std::string& object, const std::string& key);

// Every dataset below the root, as absolute paths.
std::vector<std::string> datasets(const File& f);

// A chunked, growing dataset of doubles: 1-D (width 0) or 2-D [rows, width], holding `rows`
// (rows x max(width, 1) values) to begin with.
void create_series(const File& f, const std::string& name, int64_t width,
                   const std::vector<double>& rows = {});
// Appends rows to a series (values.size() a multiple of its width); returns the rows it held.
int64_t append(const File& f, const std::string& name, const std::vector<double>& values);
// Cuts such a dataset back to its first `rows` rows.
void truncate(const File& f, const std::string& name, int64_t rows);

}  // namespace mt::h5

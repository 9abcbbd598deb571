// SentencePiece wrapper: training, line-wise parallel encoding, decoding.
#include "io/tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include "tensor/error.hpp"

namespace mt {

namespace {
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}
}  // namespace

void Tokenizer::train(const std::string& text_path, const std::string& model_prefix, int vocab_size,
                      int64_t max_sentences, int threads) {
  MT_CHECK(std::filesystem::exists(text_path), "tokenizer: missing training text '{}'", text_path);
  const std::string args = fmt::format(
      "--input={} --model_prefix={} --vocab_size={} --model_type=unigram --character_coverage=1.0 "
      "--byte_fallback=true --normalization_rule_name=identity --remove_extra_whitespaces=false "
      "--input_sentence_size={} --shuffle_input_sentence=true --num_threads={} "
      "--seed_sentencepiece_size=200000 "
      "--max_sentence_length=8192 --minloglevel=1 --unk_id=0 --bos_id=-1 --eos_id=1 --pad_id=-1",
      text_path, model_prefix, vocab_size, max_sentences, threads);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  MT_CHECK(status.ok(), "tokenizer: training on '{}' failed: {}", text_path, status.ToString());
}

std::string Tokenizer::model_bytes(const std::string& model_path) {
  std::ifstream in(model_path, std::ios::binary);
  if (!in) return "";
  std::ostringstream bytes;
  bytes << in.rdbuf();
  MT_CHECK(!in.bad(), "tokenizer: cannot read '{}'", model_path);
  return bytes.str();
}

Tokenizer::Tokenizer(const std::string& model, From from)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto status = from == From::File ? sp_->Load(model) : sp_->LoadFromSerializedProto(model);
  MT_CHECK(status.ok(), "tokenizer: cannot load '{}': {}",
           from == From::File ? model : "the stored model", status.ToString());
}

Tokenizer::~Tokenizer() = default;

int Tokenizer::vocab_size() const {
  return sp_->GetPieceSize();
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  const auto lines = split_lines(text);
  std::vector<std::vector<int>> parts(lines.size());
#pragma omp parallel for schedule(dynamic, 256)
  for (size_t i = 0; i < lines.size(); ++i) sp_->Encode(lines[i], &parts[i]).IgnoreError();
  std::vector<int32_t> ids;
  const int eos = sp_->eos_id();
  for (const auto& p : parts) {
    ids.insert(ids.end(), p.begin(), p.end());
    ids.push_back(eos);
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  std::vector<int> line;
  const int eos = sp_->eos_id();
  auto emit = [&] {
    std::string s;
    sp_->Decode(line, &s).IgnoreError();
    out += s;
    line.clear();
  };
  for (int32_t id : ids) {
    if (id == eos) {
      emit();
      out += '\n';
    } else {
      line.push_back(id);
    }
  }
  emit();
  return out;
}

}  // namespace mt

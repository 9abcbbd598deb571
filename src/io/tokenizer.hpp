// SentencePiece tokenizer (unigram model with byte fallback, so every text round-trips).
// A text is encoded line by line; the end-of-sentence id stands for each newline.
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace mt {

class Tokenizer {
 public:
  // Trains a model on the text file and writes <model_prefix>.model and .vocab.
  static void train(const std::string& text_path, const std::string& model_prefix, int vocab_size,
                    int64_t max_sentences, int threads);

  // The bytes of a model file, "" when there is none.
  static std::string model_bytes(const std::string& model_path);
  // From a model file, or from the model's bytes (a checkpoint's /tokenizer).
  enum class From { File, Bytes };
  explicit Tokenizer(const std::string& model, From from = From::File);
  ~Tokenizer();
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  int vocab_size() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace mt

// Loading `--tokenizer PATH`: a tokenizer directory, or an artifact that
// carries the files.
#include "tools/common/TokenizerInput.h"

#include "runtime/artifact/ArtifactReader.h"

#include <filesystem>

weft::runtime::Result<weft::tokenizer::TokenizerFiles>
weft::cli::loadTokenizer(const std::string &path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    return runtime::errorStatus("'" + path + "' is not a directory");
  // An artifact's files are checked against its manifest's hashes.
  if (fs::exists(fs::path(path) / "manifest.pb", ec)) {
    auto contents = runtime::readArtifactTokenizerFiles(path);
    if (!contents.ok())
      return contents.status();
    return tokenizer::TokenizerFiles::fromContents(std::move(*contents), path);
  }
  return tokenizer::TokenizerFiles::fromDirectory(path);
}

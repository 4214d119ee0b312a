// Unit tests of the .npz reader and writer: round trips and refusals.
#include "runtime/exec/Npz.h"

#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

using namespace weft::runtime;
using namespace weft::runtime::test;

namespace {

std::string fixture(const std::string &name) {
  return std::string(WEFT_UNIT_INPUTS) + "/" + name;
}

NpyView viewOf(const std::string &name, const HostTensor &t) {
  return NpyView{name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()};
}

std::string npzError(const std::string &path) {
  auto arrays = readNpz(path);
  EXPECT_FALSE(arrays.ok());
  return arrays.ok() ? "" : arrays.message();
}

/// Writes `x` (f32 [1, 3]) stored, and returns the archive's bytes.
std::string storedArchive(const TempDir &dir) {
  HostTensor x = f32({1, 3}, {1, 2, 3});
  NpyView views[] = {viewOf("x", x)};
  EXPECT_TRUE(writeNpz(dir.file("a.npz"), views).ok());
  return readFile(dir.file("a.npz"));
}

} // namespace

TEST(RuntimeNpz, RoundTripsEveryDType) {
  TempDir dir;
  std::vector<std::pair<std::string, HostTensor>> arrays = {
      {"f32", f32({2, 3}, {1, 2, 3, 4, 5, -6.5f})},
      {"f16", f16({3}, {1, 0.5f, -2})},
      {"i64", i64({2}, {-1, 1LL << 40})},
      {"i32", i32({1, 1, 2}, {7, -7})},
      {"bool", boolean({4}, {1, 0, 0, 1})},
      {"scalar", f32({}, {42})},
      {"empty", f32({0, 5}, {})},
  };
  std::vector<NpyView> views;
  for (auto &[name, t] : arrays)
    views.push_back(viewOf(name, t));
  ASSERT_TRUE(writeNpz(dir.file("rt.npz"), views).ok());
  auto back = readNpz(dir.file("rt.npz"));
  ASSERT_TRUE(back.ok()) << back.message();
  ASSERT_EQ(back->size(), arrays.size());
  for (size_t i = 0; i < arrays.size(); ++i) {
    const NpyArray &a = (*back)[i];
    EXPECT_EQ(a.name, arrays[i].first);
    EXPECT_EQ(a.dtype, arrays[i].second.dtype) << a.name;
    EXPECT_EQ(a.shape, arrays[i].second.shape) << a.name;
    EXPECT_EQ(a.data, arrays[i].second.bytes) << a.name;
  }
}

TEST(RuntimeNpz, HeaderIsPaddedTo64Bytes) {
  std::string h = npyHeader(DType::F32, Shape{2, 3});
  EXPECT_EQ(h.size() % 64, 0u);
  EXPECT_NE(h.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(h.find("'shape': (2, 3)"), std::string::npos);
  EXPECT_NE(npyHeader(DType::I64, Shape{5}).find("(5,)"), std::string::npos);
  EXPECT_NE(npyHeader(DType::BOOL, Shape{}).find("'|b1'"), std::string::npos);
}

TEST(RuntimeNpz, ReadsNumpyStoredAndDeflatedFiles) {
  for (const char *name : {"numpy_stored.npz", "numpy_deflated.npz"}) {
    auto arrays = readNpz(fixture(name));
    ASSERT_TRUE(arrays.ok()) << arrays.message();
    ASSERT_EQ(arrays->size(), 3u) << name;
    const NpyArray &x = (*arrays)[0], &ids = (*arrays)[1], &flag = (*arrays)[2];
    EXPECT_EQ(x.name, "x");
    EXPECT_EQ(x.dtype, DType::F32);
    EXPECT_EQ(x.shape, (Shape{1, 3}));
    EXPECT_EQ(floats(HostTensor{x.dtype, x.shape, x.data}),
              (std::vector<float>{1.5f, -2.0f, 3.25f}));
    EXPECT_EQ(ids.dtype, DType::I64);
    EXPECT_EQ(ints(HostTensor{ids.dtype, ids.shape, ids.data}),
              (std::vector<int64_t>{7, -1}));
    EXPECT_EQ(flag.dtype, DType::BOOL);
    EXPECT_EQ(flag.shape, Shape{});
    EXPECT_EQ(flag.data.size(), 1u);
  }
}

TEST(RuntimeNpz, RefusesUnsupportedArrays) {
  EXPECT_NE(npzError(fixture("fortran.npz")).find("fortran_order"),
            std::string::npos);
  std::string complex = npzError(fixture("complex.npz"));
  EXPECT_NE(complex.find("unsupported dtype '<c8'"), std::string::npos)
      << complex;
  EXPECT_NE(complex.find("entry 'a.npy'"), std::string::npos) << complex;
  EXPECT_NE(npzError(fixture("bigendian.npz")).find("'>f4'"),
            std::string::npos);
}

TEST(RuntimeNpz, RefusesWhatIsNotAZip) {
  TempDir dir;
  writeFile(dir.file("text.npz"), "this is not an npz archive at all");
  EXPECT_NE(npzError(dir.file("text.npz")).find("not a zip file"),
            std::string::npos);
  writeFile(dir.file("empty.npz"), "");
  EXPECT_NE(npzError(dir.file("empty.npz")).find("not a zip file"),
            std::string::npos);
  std::string missing = npzError(dir.file("missing.npz"));
  EXPECT_NE(missing.find("missing.npz"), std::string::npos);
  EXPECT_NE(missing.find("No such file"), std::string::npos);
}

TEST(RuntimeNpz, RefusesTruncatedAndCorruptArchives) {
  TempDir dir;
  std::string bytes = storedArchive(dir);
  // Cut inside the data: the end record is gone.
  writeFile(dir.file("cut.npz"), bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(npzError(dir.file("cut.npz")).find("cut.npz"), std::string::npos);
  // Flip a data byte: the CRC no longer matches.
  std::string flipped = bytes;
  flipped[bytes.find("NUMPY") + 130] ^= 0x40;
  writeFile(dir.file("crc.npz"), flipped);
  EXPECT_NE(npzError(dir.file("crc.npz")).find("CRC mismatch"),
            std::string::npos);
  // A deflated file cut short.
  std::string deflated = readFile(fixture("numpy_deflated.npz"));
  writeFile(dir.file("cutdeflate.npz"), deflated.substr(0, 200));
  EXPECT_FALSE(readNpz(dir.file("cutdeflate.npz")).ok());
}

TEST(RuntimeNpz, RefusesBadNpyPayloads) {
  std::string bad = "\x93NUMPY\x01";
  auto r = parseNpy(
      std::span(reinterpret_cast<const std::byte *>(bad.data()), bad.size()),
      "x.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("x.npy"), std::string::npos);
  // A header promising more data than there is.
  std::string h = npyHeader(DType::F32, Shape{4}) + std::string(8, '\0');
  r = parseNpy(
      std::span(reinterpret_cast<const std::byte *>(h.data()), h.size()),
      "y.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("truncated"), std::string::npos) << r.message();
}

TEST(RuntimeNpz, WriteIsAtomicAndRefusesBadArrays) {
  TempDir dir;
  HostTensor x = f32({2}, {1, 2});
  NpyView wrong = viewOf("x", x);
  wrong.shape = {3};
  NpyView views[] = {wrong};
  Status s = writeNpz(dir.file("out.npz"), views);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("out.npz"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
  NpyView bf = viewOf("b", x);
  bf.dtype = DType::BF16;
  bf.bytes = 2;
  bf.shape = {1};
  NpyView bfViews[] = {bf};
  EXPECT_NE(writeNpz(dir.file("out.npz"), bfViews).message().find("bf16"),
            std::string::npos);
  // A directory that does not exist: no file, a message naming it.
  NpyView ok[] = {viewOf("x", x)};
  EXPECT_FALSE(writeNpz(dir.file("no/such/dir/out.npz"), ok).ok());
}

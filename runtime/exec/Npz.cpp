// Reading and writing numpy .npz archives of tensors.
#include "runtime/exec/Npz.h"

#include "runtime/support/MappedFile.h"
#include "runtime/support/SafeFile.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace weft::runtime {

namespace {

//===----------------------------------------------------------------------===//
// Little-endian fields
//===----------------------------------------------------------------------===//

uint64_t readLE(const std::byte *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void appendLE(std::string &out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}

//===----------------------------------------------------------------------===//
// .npy headers
//===----------------------------------------------------------------------===//

struct DescrName {
  const char *descr;
  DType dtype;
};

// numpy's names; 1-byte types are written with '|', other spellings accepted.
constexpr DescrName kDescrs[] = {
    {"<f4", DType::F32}, {"<f2", DType::F16}, {"<f8", DType::F64},
    {"<i8", DType::I64}, {"<i4", DType::I32}, {"<i2", DType::I16},
    {"<u8", DType::U64}, {"<u4", DType::U32}, {"<u2", DType::U16},
    {"|i1", DType::I8},  {"|u1", DType::U8},  {"|b1", DType::BOOL},
    {"<i1", DType::I8},  {"<u1", DType::U8},  {"<b1", DType::BOOL},
    {"?", DType::BOOL},
};

const char *descrOf(DType dtype) {
  for (const DescrName &d : kDescrs)
    if (d.dtype == dtype)
      return d.descr;
  return nullptr;
}

/// A parsed header dict: {'descr': ..., 'fortran_order': ..., 'shape': ...}.
struct NpyDict {
  std::string descr;
  bool fortranOrder = false;
  Shape shape;
};

/// A tiny parser of the Python literal numpy writes as the header.
class DictParser {
public:
  explicit DictParser(const std::string &text) : s(text) {}

  Result<NpyDict> parse() {
    NpyDict dict;
    std::set<std::string> seen;
    if (!eat('{'))
      return fail("expected '{'");
    while (!peek('}')) {
      std::string key;
      if (!parseString(key) || !eat(':'))
        return fail("expected 'key': value");
      if (!seen.insert(key).second)
        return fail("duplicate key '" + key + "'");
      if (Status st = parseValue(key, dict); !st.ok())
        return st;
      if (!eat(','))
        break;
    }
    if (!eat('}'))
      return fail("expected '}'");
    for (const char *key : {"descr", "fortran_order", "shape"})
      if (!seen.count(key))
        return fail(std::string("missing key '") + key + "'");
    return dict;
  }

private:
  Status fail(const std::string &what) {
    return errorStatus("malformed .npy header (" + what + ")");
  }
  void skipSpace() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos])))
      ++pos;
  }
  bool peek(char c) {
    skipSpace();
    return pos < s.size() && s[pos] == c;
  }
  bool eat(char c) {
    if (!peek(c))
      return false;
    ++pos;
    return true;
  }
  bool eatWord(const char *w) {
    skipSpace();
    size_t n = std::strlen(w);
    if (s.compare(pos, n, w) != 0)
      return false;
    pos += n;
    return true;
  }
  bool parseString(std::string &out) {
    skipSpace();
    if (pos >= s.size() || (s[pos] != '\'' && s[pos] != '"'))
      return false;
    char quote = s[pos++];
    size_t end = s.find(quote, pos);
    if (end == std::string::npos)
      return false;
    out = s.substr(pos, end - pos);
    pos = end + 1;
    return true;
  }
  bool parseInt(int64_t &out) {
    skipSpace();
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])))
      ++pos;
    if (pos == start || pos - start > 18)
      return false;
    out = std::stoll(s.substr(start, pos - start));
    // Python 2 era headers may write long ints as 3L.
    if (pos < s.size() && s[pos] == 'L')
      ++pos;
    return true;
  }
  bool parseShape(Shape &shape) {
    if (!eat('('))
      return false;
    while (!peek(')')) {
      int64_t d;
      if (!parseInt(d))
        return false;
      shape.push_back(d);
      if (!eat(','))
        break;
    }
    return eat(')');
  }
  Status parseValue(const std::string &key, NpyDict &dict) {
    if (key == "descr")
      return parseString(dict.descr) ? okStatus() : fail("bad 'descr'");
    if (key == "fortran_order") {
      if (eatWord("True"))
        dict.fortranOrder = true;
      else if (!eatWord("False"))
        return fail("bad 'fortran_order'");
      return okStatus();
    }
    if (key == "shape")
      return parseShape(dict.shape) ? okStatus() : fail("bad 'shape'");
    return fail("unexpected key '" + key + "'");
  }

  const std::string &s;
  size_t pos = 0;
};

Result<DType> dtypeOfDescr(const std::string &descr) {
  for (const DescrName &d : kDescrs)
    if (descr == d.descr)
      return d.dtype;
  return errorStatus("unsupported dtype '" + descr +
                     "' (supported: <f4, <f2, <f8, <i8, <i4, <i2, |i1, |u1, "
                     "|b1; bfloat16 has no numpy dtype)");
}

//===----------------------------------------------------------------------===//
// Zip reading
//===----------------------------------------------------------------------===//

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50,
                   kEndSig = 0x06054b50, kEnd64Sig = 0x06064b50,
                   kLocator64Sig = 0x07064b50;

struct ZipEntry {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t compressedSize = 0, size = 0, localOffset = 0;
};

struct CentralDir {
  uint64_t entries = 0, offset = 0, size = 0;
};

/// Bounds-checked reads of the mapped archive.
class ZipReader {
public:
  explicit ZipReader(const MappedFile &file)
      : base(file.data()), size(file.size()) {}

  Result<std::vector<ZipEntry>> entries() {
    auto dir = findCentralDir();
    if (!dir.ok())
      return dir.status();
    std::vector<ZipEntry> out;
    uint64_t pos = dir->offset;
    for (uint64_t i = 0; i < dir->entries; ++i) {
      auto entry = readCentralEntry(pos);
      if (!entry.ok())
        return entry.status();
      out.push_back(std::move(*entry));
    }
    return out;
  }

  /// The entry's stored bytes (compressed or not).
  Result<std::span<const std::byte>> payload(const ZipEntry &e) {
    if (!has(e.localOffset, 30) || u32(e.localOffset) != kLocalSig)
      return errorStatus("entry '" + e.name + "': bad local header");
    uint64_t start =
        e.localOffset + 30 + u16(e.localOffset + 26) + u16(e.localOffset + 28);
    if (!has(start, e.compressedSize))
      return errorStatus("entry '" + e.name + "' is truncated");
    return std::span<const std::byte>(base + start, e.compressedSize);
  }

private:
  bool has(uint64_t pos, uint64_t n) const {
    return pos <= size && n <= size - pos;
  }
  uint64_t u16(uint64_t pos) const { return readLE(base + pos, 2); }
  uint64_t u32(uint64_t pos) const { return readLE(base + pos, 4); }
  uint64_t u64(uint64_t pos) const { return readLE(base + pos, 8); }

  Result<uint64_t> findEndRecord() {
    if (size < 22)
      return errorStatus("not a zip file (too short)");
    uint64_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (uint64_t pos = size - 22 + 1; pos-- > lowest;)
      if (u32(pos) == kEndSig)
        return pos;
    return errorStatus("not a zip file (no end of central directory)");
  }

  Result<CentralDir> findCentralDir() {
    auto end = findEndRecord();
    if (!end.ok())
      return end.status();
    CentralDir dir{u16(*end + 10), u32(*end + 16), u32(*end + 12)};
    if (dir.entries == 0xffff || dir.offset == 0xffffffff ||
        dir.size == 0xffffffff) {
      if (Status s = readZip64End(*end, dir); !s.ok())
        return s;
    }
    if (!has(dir.offset, dir.size))
      return errorStatus("truncated zip file (central directory past the "
                         "end)");
    return dir;
  }

  Status readZip64End(uint64_t end, CentralDir &dir) {
    if (end < 20 || u32(end - 20) != kLocator64Sig)
      return errorStatus("truncated zip file (no zip64 locator)");
    uint64_t rec = u64(end - 20 + 8);
    if (!has(rec, 56) || u32(rec) != kEnd64Sig)
      return errorStatus("truncated zip file (bad zip64 end record)");
    dir = CentralDir{u64(rec + 32), u64(rec + 48), u64(rec + 40)};
    return okStatus();
  }

  Result<ZipEntry> readCentralEntry(uint64_t &pos) {
    if (!has(pos, 46) || u32(pos) != kCentralSig)
      return errorStatus("corrupt zip central directory");
    ZipEntry e;
    e.flags = static_cast<uint16_t>(u16(pos + 8));
    e.method = static_cast<uint16_t>(u16(pos + 10));
    e.crc = static_cast<uint32_t>(u32(pos + 16));
    e.compressedSize = u32(pos + 20);
    e.size = u32(pos + 24);
    e.localOffset = u32(pos + 42);
    uint64_t nameLen = u16(pos + 28), extraLen = u16(pos + 30),
             commentLen = u16(pos + 32);
    if (!has(pos + 46, nameLen + extraLen + commentLen))
      return errorStatus("corrupt zip central directory");
    e.name.assign(reinterpret_cast<const char *>(base + pos + 46), nameLen);
    readZip64Extra(pos + 46 + nameLen, extraLen, e);
    pos += 46 + nameLen + extraLen + commentLen;
    return e;
  }

  /// Replaces 0xffffffff sizes and offset by the zip64 extra field's values.
  void readZip64Extra(uint64_t pos, uint64_t len, ZipEntry &e) {
    uint64_t end = pos + len;
    while (pos + 4 <= end) {
      uint64_t id = u16(pos), n = u16(pos + 2);
      uint64_t field = pos + 4;
      pos = field + n;
      if (id != 1 || pos > end)
        continue;
      for (uint64_t *v : {&e.size, &e.compressedSize, &e.localOffset}) {
        if (*v != 0xffffffff || field + 8 > pos)
          continue;
        *v = u64(field);
        field += 8;
      }
    }
  }

  const std::byte *base;
  uint64_t size;
};

uint32_t crc32Of(std::span<const std::byte> bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  if (bytes.empty())
    return static_cast<uint32_t>(crc);
  return static_cast<uint32_t>(crc32_z(
      crc, reinterpret_cast<const Bytef *>(bytes.data()), bytes.size()));
}

/// Inflates a raw deflate stream into exactly `size` bytes.
Status inflateRaw(std::span<const std::byte> in, std::vector<std::byte> &out,
                  uint64_t size) {
  out.resize(size);
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
    return errorStatus("zlib initialization failed");
  uint64_t inPos = 0, outPos = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    uint64_t inChunk = std::min<uint64_t>(in.size() - inPos, 1u << 30);
    uint64_t outChunk = std::min<uint64_t>(size - outPos, 1u << 30);
    zs.next_in =
        reinterpret_cast<Bytef *>(const_cast<std::byte *>(in.data() + inPos));
    zs.avail_in = static_cast<uInt>(inChunk);
    zs.next_out = reinterpret_cast<Bytef *>(out.data() + outPos);
    zs.avail_out = static_cast<uInt>(outChunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    inPos += inChunk - zs.avail_in;
    outPos += outChunk - zs.avail_out;
    if (rc == Z_BUF_ERROR && (inPos < in.size() && outPos < size))
      rc = Z_OK;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || outPos != size)
    return errorStatus("corrupt or truncated deflate data");
  return okStatus();
}

/// The uncompressed bytes of an entry, checked against its CRC.
Status extractEntry(ZipReader &zip, const ZipEntry &e,
                    std::vector<std::byte> &out) {
  if (e.flags & 1)
    return errorStatus("entry '" + e.name + "' is encrypted");
  auto payload = zip.payload(e);
  if (!payload.ok())
    return payload.status();
  if (e.method == 0) {
    if (e.compressedSize != e.size)
      return errorStatus("entry '" + e.name + "': stored sizes differ");
    out.assign(payload->begin(), payload->end());
  } else if (e.method == 8) {
    // Deflate expands at most about 1032:1; more is a corrupt header.
    if (e.size / 1032 > e.compressedSize + 1)
      return errorStatus("entry '" + e.name + "': claims " +
                         std::to_string(e.size) + " bytes from " +
                         std::to_string(e.compressedSize) +
                         " compressed (corrupt)");
    if (Status s = inflateRaw(*payload, out, e.size); !s.ok())
      return s.withPrefix("entry '" + e.name + "': ");
  } else {
    return errorStatus("entry '" + e.name + "': unsupported compression " +
                       std::to_string(e.method) + " (stored or deflate only)");
  }
  if (crc32Of(out) != e.crc)
    return errorStatus("entry '" + e.name + "': CRC mismatch (corrupt data)");
  return okStatus();
}

std::string arrayName(const std::string &entry) {
  const std::string suffix = ".npy";
  if (entry.size() >= suffix.size() &&
      entry.compare(entry.size() - suffix.size(), suffix.size(), suffix) == 0)
    return entry.substr(0, entry.size() - suffix.size());
  return entry;
}

//===----------------------------------------------------------------------===//
// Zip writing
//===----------------------------------------------------------------------===//

constexpr uint64_t kMax32 = 0xffffffff;

struct WrittenEntry {
  std::string name;
  uint32_t crc;
  uint64_t size, offset;
};

std::string zip64Extra(std::initializer_list<uint64_t> values) {
  std::string extra;
  appendLE(extra, 1, 2);
  appendLE(extra, 8 * values.size(), 2);
  for (uint64_t v : values)
    appendLE(extra, v, 8);
  return extra;
}

std::string localHeader(const WrittenEntry &e) {
  bool big = e.size >= kMax32;
  std::string extra = big ? zip64Extra({e.size, e.size}) : "";
  std::string h;
  appendLE(h, kLocalSig, 4);
  appendLE(h, big ? 45 : 20, 2); // version needed
  appendLE(h, 0, 2);             // flags
  appendLE(h, 0, 2);             // stored
  appendLE(h, 0, 2);             // time
  appendLE(h, 0x21, 2);          // date: 1980-01-01
  appendLE(h, e.crc, 4);
  appendLE(h, big ? kMax32 : e.size, 4);
  appendLE(h, big ? kMax32 : e.size, 4);
  appendLE(h, e.name.size(), 2);
  appendLE(h, extra.size(), 2);
  return h + e.name + extra;
}

std::string centralHeader(const WrittenEntry &e) {
  bool bigSize = e.size >= kMax32, bigOffset = e.offset >= kMax32;
  std::string extra;
  if (bigSize && bigOffset)
    extra = zip64Extra({e.size, e.size, e.offset});
  else if (bigSize)
    extra = zip64Extra({e.size, e.size});
  else if (bigOffset)
    extra = zip64Extra({e.offset});
  std::string h;
  appendLE(h, kCentralSig, 4);
  appendLE(h, 45, 2); // version made by
  appendLE(h, extra.empty() ? 20 : 45, 2);
  appendLE(h, 0, 2);
  appendLE(h, 0, 2);
  appendLE(h, 0, 2);
  appendLE(h, 0x21, 2);
  appendLE(h, e.crc, 4);
  appendLE(h, bigSize ? kMax32 : e.size, 4);
  appendLE(h, bigSize ? kMax32 : e.size, 4);
  appendLE(h, e.name.size(), 2);
  appendLE(h, extra.size(), 2);
  appendLE(h, 0, 2);         // comment
  appendLE(h, 0, 2);         // disk
  appendLE(h, 0, 2);         // internal attributes
  appendLE(h, 0x1a40000, 4); // external attributes: -rw-r--r--
  appendLE(h, bigOffset ? kMax32 : e.offset, 4);
  return h + e.name + extra;
}

std::string endRecords(uint64_t entries, uint64_t dirOffset, uint64_t dirSize) {
  std::string r;
  bool big = entries >= 0xffff || dirOffset >= kMax32 || dirSize >= kMax32;
  if (big) {
    uint64_t end64 = dirOffset + dirSize;
    appendLE(r, kEnd64Sig, 4);
    appendLE(r, 44, 8);
    appendLE(r, 45, 2);
    appendLE(r, 45, 2);
    appendLE(r, 0, 4);
    appendLE(r, 0, 4);
    appendLE(r, entries, 8);
    appendLE(r, entries, 8);
    appendLE(r, dirSize, 8);
    appendLE(r, dirOffset, 8);
    appendLE(r, kLocator64Sig, 4);
    appendLE(r, 0, 4);
    appendLE(r, end64, 8);
    appendLE(r, 1, 4);
  }
  appendLE(r, kEndSig, 4);
  appendLE(r, 0, 2);
  appendLE(r, 0, 2);
  appendLE(r, big ? 0xffff : entries, 2);
  appendLE(r, big ? 0xffff : entries, 2);
  appendLE(r, big ? kMax32 : dirSize, 4);
  appendLE(r, big ? kMax32 : dirOffset, 4);
  appendLE(r, 0, 2);
  return r;
}

/// Sequential writes to a FILE, remembering the first failure.
class FileWriter {
public:
  explicit FileWriter(FILE *f) : f(f) {}
  void write(const void *p, uint64_t n) {
    if (ok && n && std::fwrite(p, 1, n, f) != n)
      ok = false;
    pos += n;
  }
  void write(const std::string &s) { write(s.data(), s.size()); }
  uint64_t offset() const { return pos; }
  bool good() const { return ok; }

private:
  FILE *f;
  uint64_t pos = 0;
  bool ok = true;
};

Status writeArchive(FILE *f, std::span<const NpyView> arrays) {
  FileWriter out(f);
  std::vector<WrittenEntry> written;
  for (const NpyView &a : arrays) {
    std::string header = npyHeader(a.dtype, a.shape);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32_z(crc, reinterpret_cast<const Bytef *>(header.data()),
                  header.size());
    if (a.bytes) // crc32_z of a null buffer would reset the CRC
      crc = crc32_z(crc, reinterpret_cast<const Bytef *>(a.data), a.bytes);
    WrittenEntry e{a.name + ".npy", static_cast<uint32_t>(crc),
                   header.size() + a.bytes, out.offset()};
    out.write(localHeader(e));
    out.write(header);
    out.write(a.data, a.bytes);
    written.push_back(std::move(e));
  }
  uint64_t dirOffset = out.offset();
  for (const WrittenEntry &e : written)
    out.write(centralHeader(e));
  out.write(endRecords(written.size(), dirOffset, out.offset() - dirOffset));
  if (!out.good())
    return errorStatus(std::strerror(errno));
  return okStatus();
}

Status checkViews(std::span<const NpyView> arrays) {
  std::set<std::string> names;
  for (const NpyView &a : arrays) {
    if (!descrOf(a.dtype))
      return errorStatus("array '" + a.name + "' has dtype " +
                         dtypeName(a.dtype) + ", which numpy cannot hold");
    auto bytes = checkedBytes(a.shape, a.dtype);
    if (!bytes.ok() || *bytes != a.bytes)
      return errorStatus("array '" + a.name +
                         "': byte size does not match "
                         "its shape");
    if (a.name.empty() || !names.insert(a.name).second)
      return errorStatus("array name '" + a.name + "' is empty or repeated");
  }
  return okStatus();
}

std::string directoryOf(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

//===----------------------------------------------------------------------===//
// Public functions
//===----------------------------------------------------------------------===//

std::string npyHeader(DType dtype, std::span<const int64_t> shape) {
  std::string dict = std::string("{'descr': '") + descrOf(dtype) +
                     "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i)
    dict += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1)
    dict += ",";
  dict += "), }";
  // Pad with spaces and a newline so that data starts at a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string header = "\x93NUMPY";
  header += '\x01';
  header += '\x00';
  appendLE(header, dict.size(), 2);
  return header + dict;
}

Result<NpyArray> parseNpy(std::span<const std::byte> bytes,
                          const std::string &where) {
  auto fail = [&](const std::string &what) {
    return errorStatus(where + ": " + what);
  };
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0)
    return fail("not a .npy array (bad magic)");
  int major = static_cast<int>(bytes[6]);
  if (major < 1 || major > 3)
    return fail("unsupported .npy version " + std::to_string(major));
  int lenBytes = major == 1 ? 2 : 4;
  uint64_t start = 8 + lenBytes;
  if (bytes.size() < start)
    return fail("truncated .npy header");
  uint64_t headerLen = readLE(bytes.data() + 8, lenBytes);
  if (headerLen > bytes.size() - start)
    return fail("truncated .npy header");
  std::string text(reinterpret_cast<const char *>(bytes.data() + start),
                   headerLen);
  auto dict = DictParser(text).parse();
  if (!dict.ok())
    return fail(dict.message());
  auto dtype = dtypeOfDescr(dict->descr);
  if (!dtype.ok())
    return fail(dtype.message());
  if (dict->fortranOrder)
    return fail("fortran_order arrays are not supported (save a C-order "
                "array, e.g. np.ascontiguousarray)");
  auto need = checkedBytes(dict->shape, *dtype);
  if (!need.ok())
    return fail(need.message());
  uint64_t have = bytes.size() - start - headerLen;
  if (have != *need)
    return fail("has " + std::to_string(have) + " bytes of data, shape " +
                shapeString(dict->shape) + " of " + dtypeName(*dtype) +
                " needs " + std::to_string(*need) +
                (have < *need ? " (truncated)" : ""));
  NpyArray arr;
  arr.dtype = *dtype;
  arr.shape = dict->shape;
  arr.data.assign(bytes.begin() + start + headerLen, bytes.end());
  return arr;
}

Result<std::vector<NpyArray>> readNpz(const std::string &path,
                                      uint64_t maxBytes) {
  auto file = MappedFile::open(path);
  if (!file.ok())
    return file.status();
  ZipReader zip(**file);
  auto entries = zip.entries();
  if (!entries.ok())
    return entries.status().withPrefix(path + ": ");
  uint64_t total = 0;
  for (const ZipEntry &e : *entries)
    if (__builtin_add_overflow(total, e.size, &total) || total > maxBytes)
      return errorStatus(path + ": its arrays take more than " +
                         std::to_string(maxBytes) +
                         " bytes uncompressed, more than the inputs need "
                         "(entry '" +
                         e.name + "' claims " + std::to_string(e.size) + ")");
  std::vector<NpyArray> arrays;
  std::set<std::string> names;
  std::vector<std::byte> raw;
  for (const ZipEntry &e : *entries) {
    if (Status s = extractEntry(zip, e, raw); !s.ok())
      return s.withPrefix(path + ": ");
    auto arr = parseNpy(raw, path + ": entry '" + e.name + "'");
    if (!arr.ok())
      return arr.status();
    arr->name = arrayName(e.name);
    if (!names.insert(arr->name).second)
      return errorStatus(path + ": array '" + arr->name + "' appears twice");
    arrays.push_back(std::move(*arr));
  }
  return arrays;
}

Status writeNpz(const std::string &path, std::span<const NpyView> arrays) {
  if (Status s = checkViews(arrays); !s.ok())
    return s.withPrefix("cannot write '" + path + "': ");
  std::string tmp = directoryOf(path) + "/.weft-npz-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    return errorStatus("cannot write '" + path + "': " + std::strerror(errno));
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  FILE *f = ::fdopen(fd, "wb");
  Status s = f ? writeArchive(f, arrays) : errorStatus(std::strerror(errno));
  if (f && std::fclose(f) != 0 && s.ok())
    s = errorStatus(std::strerror(errno));
  if (!f)
    ::close(fd);
  if (s.ok())
    s = replaceWith(tmp, path); // only over a regular file (SafeFile.h)
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.withPrefix("cannot write '" + path + "': ");
  }
  return okStatus();
}

} // namespace weft::runtime

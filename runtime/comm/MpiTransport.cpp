// Ranks as the processes of an MPI job: nonblocking MPI calls polled until
// done or the timeout.
#include "runtime/comm/MpiTransport.h"

#include "runtime/steps/ElementValues.h"

// The C API only: no C++ bindings (deprecated, and a separate library).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <set>
#include <thread>

namespace weft::runtime::comm {

namespace {

/// Elements per MPI call: counts are ints.
constexpr int64_t kMaxCount = int64_t(1) << 30;

std::string mpiError(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, length);
}

Status mpiCheck(int code, const std::string &what) {
  if (code == MPI_SUCCESS)
    return okStatus();
  return errorStatus(what + ": " + mpiError(code));
}

/// f16 and bf16 sums (MPI has no such types): inout = in + inout.
template <DType D>
void sumHalves(void *in, void *inout, int *length, MPI_Datatype *) {
  const std::byte *parts[] = {static_cast<const std::byte *>(inout),
                              static_cast<const std::byte *>(in)};
  steps::sumElements(D, parts, static_cast<std::byte *>(inout), *length);
}

/// Polls `request` until it completes, fails or `timeout` passes, calling
/// `idle` (if set) now and then while it waits. A timeout's error ends with
/// `why()` (if set; by default, that another rank failed or hangs).
Status waitRequest(MPI_Request &request, MPI_Status *status,
                   std::chrono::duration<double> timeout,
                   const std::string &what,
                   const std::function<void()> &idle = {},
                   const std::function<std::string()> &why = {}) {
  auto start = std::chrono::steady_clock::now();
  for (int polls = 0;; ++polls) {
    int done = 0;
    int rc = MPI_Test(&request, &done, status ? status : MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
      return errorStatus(what + ": " + mpiError(rc));
    if (done)
      return okStatus();
    if (idle && polls % 64 == 0)
      idle();
    if (std::chrono::steady_clock::now() - start >= timeout)
      return errorStatus("timed out after " + secondsString(timeout) + " in " +
                         what +
                         (why ? why()
                              : " (another rank failed, hangs or runs a "
                                "different plan)"));
    if (polls < 1000)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

struct PendingSend {
  MPI_Request request = MPI_REQUEST_NULL;
  uint32_t peer = 0;
  std::vector<std::byte> data;
  std::string what;
};

class MpiTransport final : public Transport {
public:
  /// `probe`: a communicator of its own for liveness pings (a duplicate of
  /// `world`).
  MpiTransport(MPI_Comm world, MPI_Comm probe, uint32_t rank, uint32_t size,
               std::chrono::duration<double> timeout, MPI_Op sumF16,
               MPI_Op sumBf16, int64_t tagLimit)
      : world(world), probe(probe), self(rank), size(size), timeout(timeout),
        sumF16(sumF16), sumBf16(sumBf16), tagLimit(tagLimit) {}

  ~MpiTransport() override {
    for (auto &[group, comm] : comms)
      MPI_Comm_free(&comm);
    for (MPI_Request &r : pongs)
      if (r != MPI_REQUEST_NULL)
        MPI_Request_free(&r);
  }

  uint32_t rank() const override { return self; }
  uint32_t worldSize() const override { return size; }

  Status prepare(std::span<const Group> groups) override;
  Status allReduceSum(const Group &group, DType dtype, const std::byte *in,
                      std::byte *out, int64_t count) override;
  Status allGather(const Group &group, const std::byte *in, uint64_t bytes,
                   std::byte *out) override;
  Status send(uint32_t peer, int64_t tag, const std::byte *data,
              uint64_t bytes) override;
  Status recv(uint32_t peer, int64_t tag, std::byte *data,
              uint64_t bytes) override;
  Status flush() override;

private:
  /// Polls `request` until it completes, fails or the timeout passes,
  /// answering other ranks' liveness pings meanwhile. On a timeout, pings
  /// `peers` (of the world) and names those that do not answer.
  Status wait(MPI_Request &request, MPI_Status *status, const std::string &what,
              const Group &peers);
  /// Every rank of the world.
  Group everyone() const {
    Group g(size);
    for (uint32_t r = 0; r < size; ++r)
      g[r] = r;
    return g;
  }
  /// Answers the pings that have arrived.
  void answerPings();
  /// The ranks of `peers` that answer no ping within a few seconds.
  std::vector<uint32_t> silentRanks(const Group &peers);
  Result<MPI_Comm> commFor(const Group &group, const std::string &what);
  Status checkPeer(uint32_t peer, int64_t tag, uint64_t bytes,
                   const std::string &what);
  /// Forgets sends that have completed; the first that failed, if any.
  Status reapSends();

  MPI_Comm world, probe;
  std::vector<MPI_Request> pongs; // answers on their way
  uint32_t self, size;
  std::chrono::duration<double> timeout;
  MPI_Op sumF16, sumBf16;
  int64_t tagLimit;
  std::set<Group> known;           // every rank's groups, as split
  std::map<Group, MPI_Comm> comms; // those holding this rank
  std::list<PendingSend> pending;
};

constexpr int kPingTag = 1, kPongTag = 2;

void MpiTransport::answerPings() {
  for (int i = 0; i < 64; ++i) {
    int arrived = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kPingTag, probe, &arrived, &st) !=
            MPI_SUCCESS ||
        !arrived)
      break;
    char byte = 0;
    MPI_Recv(&byte, 1, MPI_CHAR, st.MPI_SOURCE, kPingTag, probe,
             MPI_STATUS_IGNORE);
    MPI_Request &r = pongs.emplace_back(MPI_REQUEST_NULL);
    static const char pong = 1;
    MPI_Isend(&pong, 1, MPI_CHAR, st.MPI_SOURCE, kPongTag, probe, &r);
  }
  std::erase_if(pongs, [](MPI_Request &r) {
    int done = 0;
    return r == MPI_REQUEST_NULL ||
           (MPI_Test(&r, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done);
  });
}

std::vector<uint32_t> MpiTransport::silentRanks(const Group &peers) {
  static const char ping = 1;
  std::vector<uint32_t> waiting;
  std::vector<MPI_Request> sent;
  for (uint32_t r : peers) {
    if (r == self || r >= size)
      continue;
    waiting.push_back(r);
    MPI_Request &req = sent.emplace_back(MPI_REQUEST_NULL);
    MPI_Isend(&ping, 1, MPI_CHAR, static_cast<int>(r), kPingTag, probe, &req);
  }
  // A live rank waits in a transport call too, answering as it polls.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!waiting.empty() && std::chrono::steady_clock::now() < until) {
    answerPings();
    int arrived = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kPongTag, probe, &arrived, &st) ==
            MPI_SUCCESS &&
        arrived) {
      char byte = 0;
      MPI_Recv(&byte, 1, MPI_CHAR, st.MPI_SOURCE, kPongTag, probe,
               MPI_STATUS_IGNORE);
      std::erase(waiting, static_cast<uint32_t>(st.MPI_SOURCE));
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Pings to a silent rank may never complete: let MPI finish them.
  for (MPI_Request &req : sent)
    if (req != MPI_REQUEST_NULL)
      MPI_Request_free(&req);
  return waiting;
}

Status MpiTransport::wait(MPI_Request &request, MPI_Status *status,
                          const std::string &what, const Group &peers) {
  // While waiting, answer the others' pings; on a timeout, name the ranks
  // of `peers` that answer none.
  auto why = [&]() -> std::string {
    std::vector<uint32_t> silent = silentRanks(peers);
    if (silent.empty())
      return " (another rank failed, hangs or runs a different plan)";
    std::string list;
    for (size_t i = 0; i < silent.size(); ++i)
      list += (i ? ", " : "") + std::to_string(silent[i]);
    return ": rank" + std::string(silent.size() > 1 ? "s " : " ") + list +
           (silent.size() > 1 ? " do" : " does") +
           " not answer (hung, stopped or gone)";
  };
  return waitRequest(
      request, status, timeout, what, [this] { answerPings(); }, why);
}

Status MpiTransport::prepare(std::span<const Group> groups) {
  // Every rank's groups, so that all split the same communicators in the
  // same order: [size, ranks...] per group.
  std::vector<int> mine;
  for (const Group &g : groups) {
    mine.push_back(static_cast<int>(g.size()));
    mine.insert(mine.end(), g.begin(), g.end());
  }
  int count = static_cast<int>(mine.size());
  std::vector<int> counts(size), offsets(size);
  MPI_Request request;
  if (Status s = mpiCheck(MPI_Iallgather(&count, 1, MPI_INT, counts.data(), 1,
                                         MPI_INT, world, &request),
                          "exchanging groups");
      !s.ok())
    return s;
  if (Status s = wait(request, nullptr, "exchanging groups", everyone());
      !s.ok())
    return s;
  int64_t total = 0;
  for (uint32_t r = 0; r < size; ++r) {
    offsets[r] = static_cast<int>(total);
    total += counts[r];
  }
  if (total > INT_MAX)
    return errorStatus("exchanging groups: too many groups");
  std::vector<int> all(std::max<int64_t>(total, 1));
  if (Status s =
          mpiCheck(MPI_Iallgatherv(mine.data(), count, MPI_INT, all.data(),
                                   counts.data(), offsets.data(), MPI_INT,
                                   world, &request),
                   "exchanging groups");
      !s.ok())
    return s;
  if (Status s = wait(request, nullptr, "exchanging groups", everyone());
      !s.ok())
    return s;
  std::set<Group> everyone;
  for (int64_t i = 0; i < total;) {
    int n = all[i++];
    if (n < 0 || i + n > total)
      return errorStatus("exchanging groups: malformed group list");
    everyone.insert(Group(all.begin() + i, all.begin() + i + n));
    i += n;
  }
  // std::set iterates in the same order on every rank.
  for (const Group &g : everyone) {
    if (!known.insert(g).second)
      continue;
    auto member = std::find(g.begin(), g.end(), self);
    int color = member == g.end() ? MPI_UNDEFINED : 0;
    int key = static_cast<int>(member - g.begin());
    MPI_Comm comm = MPI_COMM_NULL;
    if (Status s =
            mpiCheck(MPI_Comm_split(world, color, key, &comm),
                     "creating the communicator of ranks " + groupString(g));
        !s.ok())
      return s;
    if (comm != MPI_COMM_NULL) {
      MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
      comms[g] = comm;
    }
  }
  return okStatus();
}

Result<MPI_Comm> MpiTransport::commFor(const Group &group,
                                       const std::string &what) {
  auto it = comms.find(group);
  if (it == comms.end())
    return errorStatus(what +
                       ": the group was not prepared, or does not "
                       "hold this rank (" +
                       std::to_string(self) + ")");
  return it->second;
}

Status MpiTransport::allReduceSum(const Group &group, DType dtype,
                                  const std::byte *in, std::byte *out,
                                  int64_t count) {
  std::string what = "all-reduce over ranks " + groupString(group);
  auto comm = commFor(group, what);
  if (!comm.ok())
    return comm.status();
  MPI_Datatype type;
  MPI_Op op = MPI_SUM;
  switch (dtype) {
  case DType::F32:
    type = MPI_FLOAT;
    break;
  case DType::F64:
    type = MPI_DOUBLE;
    break;
  case DType::F16:
    type = MPI_UINT16_T;
    op = sumF16;
    break;
  case DType::BF16:
    type = MPI_UINT16_T;
    op = sumBf16;
    break;
  case DType::I64:
    type = MPI_INT64_T;
    break;
  case DType::I32:
    type = MPI_INT32_T;
    break;
  case DType::I16:
    type = MPI_INT16_T;
    break;
  case DType::I8:
    type = MPI_INT8_T;
    break;
  case DType::U8:
    type = MPI_UINT8_T;
    break;
  case DType::U16:
    type = MPI_UINT16_T;
    break;
  case DType::U32:
    type = MPI_UINT32_T;
    break;
  case DType::U64:
    type = MPI_UINT64_T;
    break;
  case DType::BOOL:
    type = MPI_UINT8_T;
    op = MPI_LOR;
    break;
  default:
    return errorStatus(what + ": cannot sum " + dtypeName(dtype));
  }
  size_t elemSize = dtypeSize(dtype);
  for (int64_t done = 0; done < count;) {
    int64_t n = std::min(count - done, kMaxCount);
    MPI_Request request;
    if (Status s = mpiCheck(
            MPI_Iallreduce(in + done * elemSize, out + done * elemSize,
                           static_cast<int>(n), type, op, *comm, &request),
            what);
        !s.ok())
      return s;
    if (Status s = wait(request, nullptr, what, group); !s.ok())
      return s;
    done += n;
  }
  return okStatus();
}

Status MpiTransport::allGather(const Group &group, const std::byte *in,
                               uint64_t bytes, std::byte *out) {
  std::string what = "all-gather over ranks " + groupString(group);
  auto comm = commFor(group, what);
  if (!comm.ok())
    return comm.status();
  if (bytes > INT_MAX)
    return errorStatus(what + ": " + std::to_string(bytes) +
                       " bytes per rank is more than one MPI call moves");
  int n = static_cast<int>(bytes);
  MPI_Request request;
  if (Status s = mpiCheck(
          MPI_Iallgather(in, n, MPI_BYTE, out, n, MPI_BYTE, *comm, &request),
          what);
      !s.ok())
    return s;
  return wait(request, nullptr, what, group);
}

Status MpiTransport::checkPeer(uint32_t peer, int64_t tag, uint64_t bytes,
                               const std::string &what) {
  if (peer >= size || peer == self)
    return errorStatus(what + ": not another rank of the world of " +
                       std::to_string(size));
  if (tag < 0 || tag > tagLimit)
    return errorStatus(what + ": the tag is outside this MPI's range [0, " +
                       std::to_string(tagLimit) + "]");
  if (bytes > INT_MAX)
    return errorStatus(what + ": " + std::to_string(bytes) +
                       " bytes is more than one MPI message holds");
  return okStatus();
}

Status MpiTransport::reapSends() {
  for (auto it = pending.begin(); it != pending.end();) {
    int done = 0;
    int rc = MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
      return errorStatus(it->what + ": " + mpiError(rc));
    it = done ? pending.erase(it) : std::next(it);
  }
  return okStatus();
}

Status MpiTransport::send(uint32_t peer, int64_t tag, const std::byte *data,
                          uint64_t bytes) {
  std::string what = "send to rank " + std::to_string(peer) + " (tag " +
                     std::to_string(tag) + ")";
  if (Status s = checkPeer(peer, tag, bytes, what); !s.ok())
    return s;
  if (Status s = reapSends(); !s.ok())
    return s;
  PendingSend &p = pending.emplace_back();
  p.data.assign(data, data + bytes);
  p.what = what;
  p.peer = peer;
  return mpiCheck(MPI_Isend(p.data.data(), static_cast<int>(bytes), MPI_BYTE,
                            static_cast<int>(peer), static_cast<int>(tag),
                            world, &p.request),
                  what);
}

Status MpiTransport::recv(uint32_t peer, int64_t tag, std::byte *data,
                          uint64_t bytes) {
  std::string what = "recv from rank " + std::to_string(peer) + " (tag " +
                     std::to_string(tag) + ")";
  if (Status s = checkPeer(peer, tag, bytes, what); !s.ok())
    return s;
  MPI_Request request;
  MPI_Status status;
  if (Status s = mpiCheck(MPI_Irecv(data, static_cast<int>(bytes), MPI_BYTE,
                                    static_cast<int>(peer),
                                    static_cast<int>(tag), world, &request),
                          what);
      !s.ok())
    return s;
  if (Status s = wait(request, &status, what, Group{peer}); !s.ok())
    return s;
  int got = 0;
  MPI_Get_count(&status, MPI_BYTE, &got);
  if (static_cast<uint64_t>(got) != bytes)
    return errorStatus(what + ": the message holds " + std::to_string(got) +
                       " bytes, expected " + std::to_string(bytes));
  return okStatus();
}

Status MpiTransport::flush() {
  while (!pending.empty()) {
    PendingSend &p = pending.front();
    if (Status s = wait(p.request, nullptr,
                        p.what + ", waiting for the receiver", Group{p.peer});
        !s.ok())
      return s;
    pending.pop_front();
  }
  return okStatus();
}

/// Small exchanges over the job's world communicator.
class MpiBootstrap final : public Bootstrap {
public:
  MpiBootstrap(MPI_Comm world, uint32_t rank, uint32_t size, uint32_t localRank,
               uint32_t localSize, std::chrono::duration<double> timeout)
      : world(world), self(rank), size(size), local(localRank),
        localCount(localSize), timeout(timeout) {}

  uint32_t rank() const override { return self; }
  uint32_t worldSize() const override { return size; }
  uint32_t localRank() const override { return local; }
  uint32_t localSize() const override { return localCount; }

  Status broadcast(std::vector<std::byte> &data) override {
    uint64_t length = data.size();
    MPI_Request request;
    if (Status s =
            mpiCheck(MPI_Ibcast(&length, 1, MPI_UINT64_T, 0, world, &request),
                     "bootstrap broadcast");
        !s.ok())
      return s;
    if (Status s =
            waitRequest(request, nullptr, timeout, "bootstrap broadcast");
        !s.ok())
      return s;
    if (length > INT_MAX)
      return errorStatus("bootstrap broadcast: too large");
    data.resize(length);
    if (Status s = mpiCheck(MPI_Ibcast(data.data(), static_cast<int>(length),
                                       MPI_BYTE, 0, world, &request),
                            "bootstrap broadcast");
        !s.ok())
      return s;
    return waitRequest(request, nullptr, timeout, "bootstrap broadcast");
  }

  Result<std::vector<std::vector<std::byte>>>
  allGather(std::span<const std::byte> mine) override {
    const std::string what = "bootstrap all-gather";
    if (mine.size() > INT_MAX)
      return errorStatus(what + ": too large");
    int count = static_cast<int>(mine.size());
    std::vector<int> counts(size), offsets(size);
    MPI_Request request;
    if (Status s = mpiCheck(MPI_Iallgather(&count, 1, MPI_INT, counts.data(), 1,
                                           MPI_INT, world, &request),
                            what);
        !s.ok())
      return s;
    if (Status s = waitRequest(request, nullptr, timeout, what); !s.ok())
      return s;
    int64_t total = 0;
    for (uint32_t r = 0; r < size; ++r) {
      offsets[r] = static_cast<int>(total);
      total += counts[r];
    }
    if (total > INT_MAX)
      return errorStatus(what + ": too large");
    std::vector<std::byte> all(std::max<int64_t>(total, 1));
    if (Status s =
            mpiCheck(MPI_Iallgatherv(mine.data(), count, MPI_BYTE, all.data(),
                                     counts.data(), offsets.data(), MPI_BYTE,
                                     world, &request),
                     what);
        !s.ok())
      return s;
    if (Status s = waitRequest(request, nullptr, timeout, what); !s.ok())
      return s;
    std::vector<std::vector<std::byte>> result(size);
    for (uint32_t r = 0; r < size; ++r)
      result[r].assign(all.begin() + offsets[r],
                       all.begin() + offsets[r] + counts[r]);
    return result;
  }

  Status barrier() override {
    MPI_Request request;
    if (Status s = mpiCheck(MPI_Ibarrier(world, &request), "bootstrap barrier");
        !s.ok())
      return s;
    return waitRequest(request, nullptr, timeout, "bootstrap barrier");
  }

private:
  MPI_Comm world;
  uint32_t self, size, local, localCount;
  std::chrono::duration<double> timeout;
};

} // namespace

struct MpiSession::Impl {
  MPI_Comm world = MPI_COMM_NULL, probe = MPI_COMM_NULL;
  MPI_Op sumF16 = MPI_OP_NULL, sumBf16 = MPI_OP_NULL;
  uint32_t rank = 0, size = 0, localRank = 0, localSize = 1;
  std::unique_ptr<MpiTransport> transport;
  std::unique_ptr<MpiBootstrap> bootstrap;
};

bool MpiSession::available() { return true; }

MpiSession::MpiSession(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}

Result<std::unique_ptr<MpiSession>>
MpiSession::init(std::chrono::duration<double> timeout) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (Status s = mpiCheck(
            MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided),
            "MPI_Init_thread");
        !s.ok())
      return s;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  auto impl = std::make_unique<Impl>();
  if (Status s =
          mpiCheck(MPI_Comm_dup(MPI_COMM_WORLD, &impl->world), "MPI_Comm_dup");
      !s.ok())
    return s;
  MPI_Comm_set_errhandler(impl->world, MPI_ERRORS_RETURN);
  if (Status s =
          mpiCheck(MPI_Comm_dup(MPI_COMM_WORLD, &impl->probe), "MPI_Comm_dup");
      !s.ok())
    return s;
  MPI_Comm_set_errhandler(impl->probe, MPI_ERRORS_RETURN);
  int rank = 0, size = 1, localRank = 0, localSize = 1;
  MPI_Comm_rank(impl->world, &rank);
  MPI_Comm_size(impl->world, &size);
  MPI_Comm local = MPI_COMM_NULL;
  if (MPI_Comm_split_type(impl->world, MPI_COMM_TYPE_SHARED, rank,
                          MPI_INFO_NULL, &local) == MPI_SUCCESS &&
      local != MPI_COMM_NULL) {
    MPI_Comm_size(local, &localSize);
    MPI_Comm_rank(local, &localRank);
    MPI_Comm_free(&local);
  }
  impl->rank = static_cast<uint32_t>(rank);
  impl->size = static_cast<uint32_t>(size);
  impl->localSize = static_cast<uint32_t>(std::max(localSize, 1));
  impl->localRank = static_cast<uint32_t>(std::max(localRank, 0));
  int *tagUpper = nullptr, found = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tagUpper, &found);
  int64_t tagLimit = found && tagUpper ? *tagUpper : 32767;
  MPI_Op_create(&sumHalves<DType::F16>, 1, &impl->sumF16);
  MPI_Op_create(&sumHalves<DType::BF16>, 1, &impl->sumBf16);
  impl->transport = std::make_unique<MpiTransport>(
      impl->world, impl->probe, impl->rank, impl->size, timeout, impl->sumF16,
      impl->sumBf16, tagLimit);
  impl->bootstrap =
      std::make_unique<MpiBootstrap>(impl->world, impl->rank, impl->size,
                                     impl->localRank, impl->localSize, timeout);
  return std::unique_ptr<MpiSession>(new MpiSession(std::move(impl)));
}

MpiSession::~MpiSession() {
  impl->transport.reset();
  impl->bootstrap.reset();
  if (impl->sumF16 != MPI_OP_NULL)
    MPI_Op_free(&impl->sumF16);
  if (impl->sumBf16 != MPI_OP_NULL)
    MPI_Op_free(&impl->sumBf16);
  if (impl->world != MPI_COMM_NULL)
    MPI_Comm_free(&impl->world);
  if (impl->probe != MPI_COMM_NULL)
    MPI_Comm_free(&impl->probe);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized)
    MPI_Finalize();
}

uint32_t MpiSession::rank() const { return impl->rank; }
uint32_t MpiSession::worldSize() const { return impl->size; }
uint32_t MpiSession::localSize() const { return impl->localSize; }
Transport &MpiSession::transport() { return *impl->transport; }
Bootstrap &MpiSession::bootstrap() { return *impl->bootstrap; }

void MpiSession::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

} // namespace weft::runtime::comm

// weft-nccl-test: checks NcclCollectives on the GPUs of one host.
//
//   weft-nccl-test [--nproc N] [--timeout SECONDS]
//
// Starts N ranks of itself (default: one per GPU) as `weft run --nproc`
// does, each on the GPU of its local rank, meeting through the TCP
// bootstrap; started with WEFT_RANK/WEFT_WORLD_SIZE (or torchrun's
// variables) and MASTER_ADDR/MASTER_PORT, it is one rank (add --fault for
// the failure check). They check, against sums computed on the host: all-reduce
// of every dtype over the world, pairs of ranks and the world in reverse order;
// all-gather in group order; send/recv between pairs and around a ring
// (grouped); and an all-reduce captured in a CUDA graph and replayed. Then a
// second launch checks failure: one rank leaves before a collective, and the
// others must end with an error within the timeout. Every check prints a PASS
// or FAIL line; the last line is the summary, and the exit status is 1 if
// anything failed.
#include "runtime/backends/cuda/NcclComm.h"
#include "runtime/comm/Bootstrap.h"
#include "runtime/exec/Launcher.h"
#include "runtime/support/Float16.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

using namespace weft::runtime;
using comm::Group;
using Clock = std::chrono::steady_clock;

namespace {

/// Prints one line in one write, so that the ranks' lines do not mix.
void say(const std::string &line) {
  std::string text = line + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

struct Checks {
  uint32_t rank = 0;
  int failures = 0;

  bool check(bool ok, const std::string &what, const std::string &why = "") {
    say(std::string(ok ? "PASS" : "FAIL") + " rank " + std::to_string(rank) +
        ": " + what + (ok || why.empty() ? "" : ": " + why));
    failures += !ok;
    return ok;
  }
  bool status(const Status &s, const std::string &what) {
    return s.ok() || check(false, what, s.message());
  }
  bool cuda(cudaError_t e, const std::string &what) {
    return e == cudaSuccess || check(false, what, cudaGetErrorString(e));
  }
};

/// A rank's element i: small integers, so that every sum is exact in every
/// dtype (at most 8 ranks: |sum| <= 48).
double valueOf(DType dtype, uint32_t rank, int64_t i) {
  if (dtype == DType::U8)
    return double((rank + i) % 5);
  if (dtype == DType::BOOL)
    return i % (rank + 2) == 0 ? 1 : 0;
  return double(((rank + 1) * 3 + i % 11) % 13) - 6;
}

std::vector<std::byte> encode(DType dtype, const std::vector<double> &v) {
  std::vector<std::byte> out(v.size() * dtypeSize(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    std::byte *p = out.data() + i * dtypeSize(dtype);
    auto put = [&](auto x) { std::memcpy(p, &x, sizeof(x)); };
    switch (dtype) {
    case DType::F32:
      put(float(v[i]));
      break;
    case DType::F64:
      put(v[i]);
      break;
    case DType::F16:
      put(floatToHalf(float(v[i])));
      break;
    case DType::BF16:
      put(floatToBf16(float(v[i])));
      break;
    case DType::I32:
      put(int32_t(v[i]));
      break;
    case DType::I64:
      put(int64_t(v[i]));
      break;
    case DType::I8:
      put(int8_t(v[i]));
      break;
    default: // U8, BOOL
      put(uint8_t(v[i]));
      break;
    }
  }
  return out;
}

/// Device memory freed on scope exit.
struct DeviceBuffer {
  void *ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    if (cudaMalloc(&ptr, std::max<size_t>(bytes, 1)) != cudaSuccess)
      ptr = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr)
      cudaFree(ptr);
  }
};

struct Rank {
  comm::Bootstrap &boot;
  cuda::NcclCollectives &nc;
  cudaStream_t stream;
  Checks &checks;
  uint32_t rank, size;
  /// Set once synchronize() failed: it aborted the communicators, so no
  /// further check can run.
  bool aborted = false;

  bool synchronize(const std::string &what) {
    Status s = nc.synchronize(stream);
    aborted |= !s.ok();
    return checks.status(s, what);
  }

  /// Copies `host` in, runs `enqueue(in, out)`, waits and compares `out`
  /// with `expected`.
  void run(const std::string &what, const std::vector<std::byte> &host,
           const std::vector<std::byte> &expected,
           const std::function<Status(void *, void *)> &enqueue) {
    DeviceBuffer in(host.size()), out(expected.size());
    if (!in.ptr || !out.ptr) {
      checks.check(false, what, "cudaMalloc failed");
      return;
    }
    if (!checks.cuda(cudaMemcpy(in.ptr, host.data(), host.size(),
                                cudaMemcpyHostToDevice),
                     what + ": copying in") ||
        !checks.cuda(cudaMemset(out.ptr, 0xAB, expected.size()),
                     what + ": clearing the output"))
      return;
    if (!checks.status(enqueue(in.ptr, out.ptr), what) || !synchronize(what))
      return;
    std::vector<std::byte> got(expected.size());
    if (!checks.cuda(
            cudaMemcpy(got.data(), out.ptr, got.size(), cudaMemcpyDeviceToHost),
            what + ": copying out"))
      return;
    size_t bad = 0;
    while (bad < got.size() && got[bad] == expected[bad])
      ++bad;
    checks.check(bad == got.size(), what,
                 "first wrong byte at offset " + std::to_string(bad) + " of " +
                     std::to_string(got.size()));
  }

  void allReduce(const Group &g, DType dtype, int64_t count) {
    std::vector<double> mine(count), sum(count, 0);
    for (int64_t i = 0; i < count; ++i) {
      mine[i] = valueOf(dtype, rank, i);
      for (uint32_t q : g)
        sum[i] = dtype == DType::BOOL ? std::max(sum[i], valueOf(dtype, q, i))
                                      : sum[i] + valueOf(dtype, q, i);
    }
    run("all-reduce " + std::string(dtypeName(dtype)) + " over ranks " +
            comm::groupString(g) + " (" + std::to_string(count) + " elements)",
        encode(dtype, mine), encode(dtype, sum), [&](void *in, void *out) {
          return nc.allReduceSum(g, dtype, in, out, count, stream);
        });
  }

  static std::vector<std::byte> pattern(uint32_t rank, uint64_t bytes) {
    std::vector<std::byte> v(bytes);
    for (uint64_t j = 0; j < bytes; ++j)
      v[j] = std::byte((rank * 37 + j) % 251);
    return v;
  }

  void allGather(const Group &g, uint64_t bytes) {
    std::vector<std::byte> expected;
    for (uint32_t q : g) {
      std::vector<std::byte> part = pattern(q, bytes);
      expected.insert(expected.end(), part.begin(), part.end());
    }
    run("all-gather over ranks " + comm::groupString(g) + " (" +
            std::to_string(bytes) + " bytes each)",
        pattern(rank, bytes), expected, [&](void *in, void *out) {
          return nc.allGather(g, in, bytes, out, stream);
        });
  }

  /// Pairs (0, 1), (2, 3)...: the even rank sends first, then receives.
  void sendRecvPairs(uint64_t bytes) {
    uint32_t peer = rank ^ 1;
    if (peer >= size)
      return;
    std::string what = "send/recv with rank " + std::to_string(peer) + " (" +
                       std::to_string(bytes) + " bytes)";
    run(what, pattern(rank, bytes), pattern(peer, bytes),
        [&](void *in, void *out) {
          bool even = rank % 2 == 0;
          Status first = even ? nc.send(peer, in, bytes, stream)
                              : nc.recv(peer, out, bytes, stream);
          if (!first.ok())
            return first;
          return even ? nc.recv(peer, out, bytes, stream)
                      : nc.send(peer, in, bytes, stream);
        });
  }

  /// Every rank sends to the next and receives from the previous at once.
  void ring(uint64_t bytes) {
    uint32_t next = (rank + 1) % size, prev = (rank + size - 1) % size;
    run("send/recv around the ring, grouped (" + std::to_string(bytes) +
            " bytes)",
        pattern(rank, bytes), pattern(prev, bytes), [&](void *in, void *out) {
          if (Status s = nc.groupStart(); !s.ok())
            return s;
          Status a = nc.send(next, in, bytes, stream);
          Status b = nc.recv(prev, out, bytes, stream);
          Status end = nc.groupEnd();
          return !a.ok() ? a : !b.ok() ? b : end;
        });
  }

  /// Many all-reduces enqueued back to back with one wait at the end: sizes
  /// and dtypes that change from call to call (the peer path reuses its
  /// two slots; on 4 GPUs, one shot and two), in place and not, at
  /// addresses off 16-byte alignment.
  void burst(const Group &g) {
    struct Call {
      DType dtype;
      int64_t count;
      bool inPlace;
      size_t offset; // bytes past the allocation's start
    };
    std::vector<Call> calls = {
        {DType::BF16, 1 << 18, false, 0}, {DType::F32, 4099, true, 0},
        {DType::F16, 3, false, 2},        {DType::BF16, 1 << 20, true, 2},
        {DType::F32, 1 << 16, false, 4},  {DType::BF16, 12345, true, 6},
        {DType::F16, 1 << 19, false, 0},  {DType::F32, 1, true, 0},
        {DType::BF16, 1 << 18, false, 0}, {DType::BF16, 1 << 21, false, 0},
        {DType::F32, 777, false, 8},      {DType::BF16, 1 << 18, true, 2}};
    std::string what = "12 all-reduces over ranks " + comm::groupString(g) +
                       " back to back (dtypes, sizes, in place, unaligned)";
    std::vector<std::unique_ptr<DeviceBuffer>> ins, outs;
    for (size_t c = 0; c < calls.size(); ++c) {
      const Call &call = calls[c];
      size_t bytes = call.offset + call.count * dtypeSize(call.dtype);
      ins.push_back(std::make_unique<DeviceBuffer>(bytes));
      outs.push_back(std::make_unique<DeviceBuffer>(call.inPlace ? 1 : bytes));
      if (!ins.back()->ptr || !outs.back()->ptr) {
        checks.check(false, what, "cudaMalloc failed");
        return;
      }
      std::vector<double> mine(call.count);
      for (int64_t i = 0; i < call.count; ++i)
        mine[i] = valueOf(call.dtype, rank + uint32_t(c), i);
      std::vector<std::byte> host = encode(call.dtype, mine);
      if (!checks.cuda(
              cudaMemcpy(static_cast<char *>(ins.back()->ptr) + call.offset,
                         host.data(), host.size(), cudaMemcpyHostToDevice),
              what + ": copying in"))
        return;
    }
    for (size_t c = 0; c < calls.size(); ++c) {
      const Call &call = calls[c];
      char *in = static_cast<char *>(ins[c]->ptr) + call.offset;
      char *out =
          call.inPlace ? in : static_cast<char *>(outs[c]->ptr) + call.offset;
      if (!checks.status(
              nc.allReduceSum(g, call.dtype, in, out, call.count, stream),
              what + ": enqueueing call " + std::to_string(c)))
        return;
    }
    if (!synchronize(what))
      return;
    int wrong = 0;
    std::string first;
    for (size_t c = 0; c < calls.size(); ++c) {
      const Call &call = calls[c];
      std::vector<double> sum(call.count, 0);
      for (int64_t i = 0; i < call.count; ++i)
        for (uint32_t q : g)
          sum[i] += valueOf(call.dtype, q + uint32_t(c), i);
      std::vector<std::byte> expected = encode(call.dtype, sum),
                             got(expected.size());
      char *out =
          static_cast<char *>(call.inPlace ? ins[c]->ptr : outs[c]->ptr) +
          call.offset;
      if (!checks.cuda(
              cudaMemcpy(got.data(), out, got.size(), cudaMemcpyDeviceToHost),
              what + ": copying out"))
        return;
      if (got != expected && !wrong++)
        first = "call " + std::to_string(c) + " (" + dtypeName(call.dtype) +
                ", " + std::to_string(call.count) + " elements)";
    }
    checks.check(!wrong, what,
                 std::to_string(wrong) + " call(s) wrong, the first " + first);
  }

  /// Whether the group's small all-reduces take the one-shot path through
  /// peer memory (GPUs of one host with peer access: these machines).
  void peerPath(const Group &g) {
    uint64_t limit = nc.peerAllReduceLimit(g);
    checks.check(limit > 0,
                 "one-shot peer all-reduce over ranks " + comm::groupString(g) +
                     " (up to " + std::to_string(limit) + " bytes)",
                 "not set up: NCCL takes every all-reduce");
  }

  /// An all-reduce captured in a CUDA graph, replayed with new inputs.
  void graphReplay(const Group &world, int64_t count) {
    std::string what = "all-reduce f32 captured in a CUDA graph";
    DeviceBuffer in(count * 4), out(count * 4);
    if (!in.ptr || !out.ptr) {
      checks.check(false, what, "cudaMalloc failed");
      return;
    }
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (!checks.cuda(
            cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
            what + ": begin capture"))
      return;
    Status enq =
        nc.allReduceSum(world, DType::F32, in.ptr, out.ptr, count, stream);
    cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (!checks.status(enq, what + ": enqueue while capturing") ||
        !checks.cuda(end, what + ": end capture") ||
        !checks.cuda(cudaGraphInstantiate(&exec, graph, 0),
                     what + ": instantiate"))
      return;
    for (int replay = 0; replay < 2; ++replay) {
      std::vector<float> mine(count), sum(count, 0);
      for (int64_t i = 0; i < count; ++i) {
        mine[i] = float(valueOf(DType::F32, rank, i) + replay);
        for (uint32_t q : world)
          sum[i] += float(valueOf(DType::F32, q, i) + replay);
      }
      std::vector<float> got(count);
      std::string step = what + ", replay " + std::to_string(replay + 1);
      if (!checks.cuda(cudaMemcpy(in.ptr, mine.data(), count * 4,
                                  cudaMemcpyHostToDevice),
                       step) ||
          !checks.cuda(cudaGraphLaunch(exec, stream), step + ": launch") ||
          !synchronize(step) ||
          !checks.cuda(cudaMemcpy(got.data(), out.ptr, count * 4,
                                  cudaMemcpyDeviceToHost),
                       step))
        break;
      checks.check(got == sum, step, "wrong sums");
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
};

Group worldOf(uint32_t size) {
  Group g(size);
  for (uint32_t q = 0; q < size; ++q)
    g[q] = q;
  return g;
}

/// One rank: the collectives, or (`fault`) a rank that leaves.
int rankMain(bool fault, double timeoutSeconds) {
  Checks checks;
  auto launch = comm::detectLaunch();
  if (!launch.ok() || !launch->has_value()) {
    say("FAIL: not started as a rank: " +
        (launch.ok() ? std::string("no WEFT_RANK") : launch.message()));
    return 1;
  }
  checks.rank = (*launch)->rank;
  auto timeout = std::chrono::duration<double>(timeoutSeconds);
  auto boot = comm::TcpBootstrap::connect(**launch, timeout);
  if (!boot.ok())
    return checks.check(false, "bootstrap", boot.message()), 1;
  uint32_t rank = (*boot)->rank(), size = (*boot)->worldSize();
  const char *nvls = std::getenv("NCCL_NVLS_ENABLE");
  checks.check(nvls && std::string(nvls) == "0",
               "NCCL_NVLS_ENABLE=0 in the rank's environment",
               nvls ? std::string("it is ") + nvls : "it is unset");
  int devices = 0;
  if (!checks.cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount"))
    return 1;
  int device = static_cast<int>((*boot)->localRank());
  if (!checks.check(device < devices,
                    "a GPU for local rank " + std::to_string(device),
                    std::to_string(devices) + " GPU(s) found"))
    return 1;

  Group world = worldOf(size), reversed(world.rbegin(), world.rend());
  Group pair = {rank & ~1u, (rank & ~1u) + 1};
  std::vector<Group> groups = {world, reversed};
  if (pair[1] < size)
    groups.push_back(pair);
  {
    // A malformed setting is refused before anything collective (every
    // rank reads the same one).
    setenv("WEFT_PEER_ALLREDUCE_MAX_BYTES", "8M", 1);
    auto refused =
        cuda::NcclCollectives::create(**boot, groups, device, timeout);
    unsetenv("WEFT_PEER_ALLREDUCE_MAX_BYTES");
    checks.check(!refused.ok() &&
                     refused.message().find(
                         "WEFT_PEER_ALLREDUCE_MAX_BYTES='8M' is not a number "
                         "of bytes") != std::string::npos,
                 "WEFT_PEER_ALLREDUCE_MAX_BYTES=8M is refused",
                 refused.ok() ? "it was taken" : refused.message());
  }
  auto start = Clock::now();
  auto nc = cuda::NcclCollectives::create(**boot, groups, device, timeout);
  if (!checks.status(nc.ok() ? okStatus() : nc.status(),
                     "creating the communicators"))
    return 1;
  checks.check(true, "creating the communicators (" +
                         std::to_string(groups.size()) + " groups, " +
                         comm::secondsString(Clock::now() - start) + ")");
  cudaStream_t stream = nullptr;
  if (!checks.cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                   "cudaStreamCreate"))
    return 1;
  Rank r{**boot, **nc, stream, checks, rank, size};

  if (fault) {
    r.allReduce(world, DType::F32, 1024);
    if (!checks.status((*boot)->barrier(), "bootstrap barrier"))
      return 1;
    if (rank == size - 1) {
      say("rank " + std::to_string(rank) +
          " leaves before the next collective");
      std::_Exit(0);
    }
    DeviceBuffer in(4096), out(4096);
    auto t0 = Clock::now();
    Status s =
        (*nc)->allReduceSum(world, DType::F32, in.ptr, out.ptr, 1024, stream);
    if (s.ok())
      s = (*nc)->synchronize(stream);
    double took = std::chrono::duration<double>(Clock::now() - t0).count();
    checks.check(!s.ok() && took < timeoutSeconds + 10,
                 "an all-reduce missing rank " + std::to_string(size - 1) +
                     " ends with an error within the timeout (" +
                     comm::secondsString(timeout) + ")",
                 s.ok() ? std::string("it succeeded")
                        : "took " + std::to_string(took) + " s");
    if (!s.ok())
      say("rank " + std::to_string(rank) + " error: " + s.message());
    // The communicators are aborted: do not wait on the stream.
    return checks.failures ? 1 : 0;
  }

  std::vector<std::function<void()>> steps;
  for (DType dtype :
       {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I32, DType::I64,
        DType::I8, DType::U8, DType::BOOL})
    steps.push_back([&, dtype] { r.allReduce(world, dtype, 4099); });
  steps.push_back(
      [&] { r.allReduce(world, DType::F32, (int64_t(1) << 22) + 1); });
  steps.push_back([&] { r.allReduce(reversed, DType::BF16, 1 << 16); });
  if (pair[1] < size)
    steps.push_back([&] { r.allReduce(pair, DType::F32, 1 << 20); });
  steps.push_back([&] { r.allGather(world, 1003); });
  steps.push_back([&] { r.allGather(reversed, 1 << 20); });
  if (pair[1] < size)
    steps.push_back([&] { r.allGather(pair, 4097); });
  steps.push_back([&] { r.sendRecvPairs(1 << 20); });
  steps.push_back([&] { r.ring(12345); });
  steps.push_back([&] { r.graphReplay(world, 1 << 16); });
  steps.push_back([&] { r.peerPath(world); });
  steps.push_back([&] { r.burst(world); });
  steps.push_back([&] { r.burst(reversed); });
  if (pair[1] < size)
    steps.push_back([&] { r.burst(pair); });
  for (size_t i = 0; i < steps.size(); ++i) {
    steps[i]();
    // The other ranks would wait for this one in every later check.
    if (r.aborted) {
      say("FAIL rank " + std::to_string(rank) + ": " +
          std::to_string(steps.size() - i - 1) +
          " check(s) not run: the communicators were aborted");
      return 1;
    }
  }
  checks.status((*boot)->barrier(), "bootstrap barrier at the end");
  nc->reset();
  cudaStreamDestroy(stream);
  say(std::string(checks.failures ? "FAIL" : "PASS") + " rank " +
      std::to_string(rank) + ": " + std::to_string(checks.failures) +
      " failure(s)");
  return checks.failures ? 1 : 0;
}

bool parseArg(const std::string &arg, const char *name, std::string &value,
              int &i, int argc, char **argv) {
  std::string n = name;
  if (arg == n && i + 1 < argc) {
    value = argv[++i];
    return true;
  }
  if (arg.rfind(n + "=", 0) == 0) {
    value = arg.substr(n.size() + 1);
    return true;
  }
  return false;
}

} // namespace

int main(int argc, char **argv) {
  unsigned nproc = 0;
  double timeout = 30;
  bool fault = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    if (arg == "--fault")
      fault = true;
    else if (parseArg(arg, "--nproc", value, i, argc, argv))
      nproc = static_cast<unsigned>(std::atoi(value.c_str()));
    else if (parseArg(arg, "--timeout", value, i, argc, argv))
      timeout = std::atof(value.c_str());
    else {
      say("FAIL: unknown argument '" + arg +
          "' (usage: weft-nccl-test [--nproc N] [--timeout SECONDS])");
      return 2;
    }
  }
  // Started as one rank (by this program, weft run's launcher variables or
  // torchrun's): run the checks.
  auto launched = comm::detectLaunch();
  if (!launched.ok()) {
    say("FAIL: " + launched.message());
    return 2;
  }
  if (launched->has_value() && (*launched)->kind == comm::LaunchInfo::Kind::Tcp)
    return rankMain(fault, timeout);

  int devices = 0;
  if (cudaError_t e = cudaGetDeviceCount(&devices); e != cudaSuccess) {
    say(std::string("FAIL: cudaGetDeviceCount: ") + cudaGetErrorString(e));
    return 1;
  }
  if (!nproc)
    nproc = static_cast<unsigned>(devices);
  if (nproc < 2 || nproc > static_cast<unsigned>(devices)) {
    say("FAIL: needs 2 to " + std::to_string(devices) +
        " ranks, one per GPU (found " + std::to_string(devices) +
        " GPU(s), --nproc " + std::to_string(nproc) + ")");
    return 1;
  }
  auto self = ownCommandLine();
  if (!self.ok()) {
    say("FAIL: " + self.message());
    return 1;
  }
  int failures = 0;
  for (bool faultCase : {false, true}) {
    LocalLaunch launch;
    launch.nproc = nproc;
    launch.args = *self;
    launch.args.push_back("--timeout=" + std::to_string(timeout));
    if (faultCase)
      launch.args.push_back("--fault");
    std::string what =
        faultCase ? "a rank that leaves ends the others"
                  : "collectives on " + std::to_string(nproc) + " GPUs";
    auto start = Clock::now();
    auto outcome = launchLocalRanks(launch);
    double took = std::chrono::duration<double>(Clock::now() - start).count();
    bool ok = outcome.ok() && outcome->exitCode == 0;
    failures += !ok;
    say(std::string(ok ? "PASS: " : "FAIL: ") + what + " (" +
        std::to_string(took) + " s)" +
        (ok ? ""
            : ": " + (outcome.ok() ? outcome->message : outcome.message())));
  }
  say(failures ? "FAIL: weft-nccl-test" : "PASS: weft-nccl-test");
  return failures ? 1 : 0;
}

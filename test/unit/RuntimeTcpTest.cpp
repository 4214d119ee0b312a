// Unit tests of ranks that meet over TCP: the launcher's environment, the
// rendezvous (TcpBootstrap) and the transport (TcpTransport), with every
// rank a thread of this test connecting over the loopback; sums are
// checked bit for bit against the in-process transport. And the MPI
// bootstrap, when run under mpirun.
#include "runtime/comm/Bootstrap.h"
#include "runtime/comm/InProcessTransport.h"
#include "runtime/comm/MpiTransport.h"
#include "runtime/comm/TcpTransport.h"

#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

using namespace weft::runtime;
using namespace weft::runtime::test;
using comm::LaunchInfo;
using Clock = std::chrono::steady_clock;

namespace {

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

LaunchInfo rankInfo(uint32_t rank, uint32_t size, uint16_t port) {
  LaunchInfo info;
  info.rank = rank;
  info.size = size;
  info.localRank = rank;
  info.localSize = size;
  info.sizeSource = "WEFT_WORLD_SIZE=" + std::to_string(size);
  info.masterAddr = "127.0.0.1";
  info.masterPort = port;
  return info;
}

using RankFn =
    std::function<Status(uint32_t, comm::Bootstrap &, comm::TcpTransport &)>;

/// Runs `fn` on `size` rank threads, each with its bootstrap and
/// transport; every rank's status.
std::vector<Status>
onTcpRanks(uint32_t size, const RankFn &fn,
           std::chrono::duration<double> timeout = std::chrono::seconds(20)) {
  auto port = comm::freeLocalPort();
  EXPECT_TRUE(port.ok()) << port.message();
  std::vector<Status> statuses(size);
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      auto boot =
          comm::TcpBootstrap::connect(rankInfo(r, size, *port), timeout);
      if (!boot.ok()) {
        statuses[r] = boot.status();
        return;
      }
      auto t = comm::TcpTransport::create(**boot, (*boot)->host(), timeout);
      if (!t.ok()) {
        statuses[r] = t.status();
        return;
      }
      statuses[r] = fn(r, **boot, **t);
    });
  for (std::thread &t : threads)
    t.join();
  return statuses;
}

/// Sets (value non-null) or clears environment variables for one test.
class ScopedEnv {
public:
  ScopedEnv(std::initializer_list<std::pair<const char *, const char *>> vars) {
    for (const char *name : kVars)
      unsetenv(name);
    for (auto [name, value] : vars)
      setenv(name, value, 1);
  }
  ~ScopedEnv() {
    for (const char *name : kVars)
      unsetenv(name);
  }

private:
  static constexpr const char *kVars[] = {"WEFT_RANK",
                                          "WEFT_WORLD_SIZE",
                                          "WEFT_LOCAL_RANK",
                                          "WEFT_LOCAL_WORLD_SIZE",
                                          "MASTER_ADDR",
                                          "MASTER_PORT",
                                          "RANK",
                                          "WORLD_SIZE",
                                          "LOCAL_RANK",
                                          "LOCAL_WORLD_SIZE",
                                          "OMPI_COMM_WORLD_RANK",
                                          "OMPI_COMM_WORLD_SIZE",
                                          "PMI_RANK",
                                          "PMI_SIZE",
                                          "SLURM_PROCID",
                                          "SLURM_STEP_NUM_TASKS"};
};

template <typename T> std::vector<std::byte> bytesOf(std::vector<T> v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  if (!b.empty())
    std::memcpy(b.data(), v.data(), b.size());
  return b;
}

template <typename T> const std::byte *raw(const T *p) {
  return reinterpret_cast<const std::byte *>(p);
}

} // namespace

//===----------------------------------------------------------------------===//
// The launcher's environment
//===----------------------------------------------------------------------===//

TEST(LaunchEnvironment, ReadsWeftAndTorchrunVariables) {
  {
    ScopedEnv env({});
    auto got = comm::detectLaunch();
    ASSERT_TRUE(got.ok()) << got.message();
    EXPECT_FALSE(got->has_value());
  }
  {
    ScopedEnv env({{"WEFT_RANK", "1"},
                   {"WEFT_WORLD_SIZE", "4"},
                   {"WEFT_LOCAL_RANK", "1"},
                   {"WEFT_LOCAL_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "10.1.2.3"},
                   {"MASTER_PORT", "29500"}});
    auto got = comm::detectLaunch();
    ASSERT_TRUE(got.ok() && got->has_value()) << got.message();
    const LaunchInfo &l = **got;
    EXPECT_EQ(l.kind, LaunchInfo::Kind::Tcp);
    EXPECT_EQ(l.rank, 1u);
    EXPECT_EQ(l.size, 4u);
    EXPECT_EQ(l.localSize, 2u);
    EXPECT_EQ(l.masterAddr, "10.1.2.3");
    EXPECT_EQ(l.masterPort, 29500);
    EXPECT_EQ(l.sizeSource, "WEFT_WORLD_SIZE=4");
  }
  {
    // torchrun: RANK and WORLD_SIZE with MASTER_ADDR.
    ScopedEnv env({{"RANK", "3"},
                   {"WORLD_SIZE", "8"},
                   {"LOCAL_RANK", "3"},
                   {"MASTER_ADDR", "node0"},
                   {"MASTER_PORT", "1234"}});
    auto got = comm::detectLaunch();
    ASSERT_TRUE(got.ok() && got->has_value()) << got.message();
    EXPECT_EQ((*got)->kind, LaunchInfo::Kind::Tcp);
    EXPECT_EQ((*got)->localRank, 3u);
    EXPECT_EQ((*got)->localSize, 8u);
  }
  {
    // RANK and WORLD_SIZE alone, or an MPI launcher's: MPI.
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}});
    auto got = comm::detectLaunch();
    ASSERT_TRUE(got.ok() && got->has_value()) << got.message();
    EXPECT_EQ((*got)->kind, LaunchInfo::Kind::Mpi);
  }
  {
    ScopedEnv env({{"OMPI_COMM_WORLD_RANK", "1"},
                   {"OMPI_COMM_WORLD_SIZE", "2"},
                   {"MASTER_ADDR", "x"}});
    auto got = comm::detectLaunch();
    ASSERT_TRUE(got.ok() && got->has_value()) << got.message();
    EXPECT_EQ((*got)->kind, LaunchInfo::Kind::Mpi);
    EXPECT_EQ((*got)->sizeSource, "OMPI_COMM_WORLD_SIZE=2");
  }
  {
    // A world of one process is not a launched job.
    ScopedEnv env({{"WEFT_RANK", "0"}, {"WEFT_WORLD_SIZE", "1"}});
    auto got = comm::detectLaunch();
    ASSERT_TRUE(got.ok()) << got.message();
    EXPECT_FALSE(got->has_value());
  }
}

TEST(LaunchEnvironment, RefusesBadValuesNamingTheVariable) {
  auto refusal =
      [](std::initializer_list<std::pair<const char *, const char *>> vars) {
        ScopedEnv env(vars);
        auto got = comm::detectLaunch();
        return got.ok() ? std::string("(accepted)") : got.message();
      };
  EXPECT_EQ(refusal({{"WEFT_RANK", "x"}, {"WEFT_WORLD_SIZE", "2"}}),
            "WEFT_RANK='x' is not a non-negative integer");
  EXPECT_EQ(refusal({{"WEFT_RANK", "0"}}),
            "WEFT_RANK is set but WEFT_WORLD_SIZE is not: a launched rank "
            "needs both");
  EXPECT_EQ(refusal({{"WEFT_RANK", "2"}, {"WEFT_WORLD_SIZE", "2"}}),
            "WEFT_RANK=2 is out of range for WEFT_WORLD_SIZE=2");
  EXPECT_EQ(refusal({{"WEFT_RANK", "0"}, {"WEFT_WORLD_SIZE", "0"}}),
            "WEFT_WORLD_SIZE=0 is not a positive number of ranks");
  EXPECT_EQ(
      refusal(
          {{"WEFT_RANK", "0"}, {"WEFT_WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}),
      "MASTER_ADDR is not set: with WEFT_RANK and WEFT_WORLD_SIZE, "
      "MASTER_ADDR and MASTER_PORT name rank 0's rendezvous address "
      "(weft run --nproc sets them)");
  for (const char *port : {"0", "65536", "http", "-1", ""})
    EXPECT_TRUE(contains(refusal({{"WEFT_RANK", "0"},
                                  {"WEFT_WORLD_SIZE", "2"},
                                  {"MASTER_ADDR", "127.0.0.1"},
                                  {"MASTER_PORT", port}}),
                         *port ? "MASTER_PORT='" : "MASTER_PORT is not set"))
        << port;
  EXPECT_EQ(refusal({{"RANK", "1"},
                     {"WORLD_SIZE", "2"},
                     {"LOCAL_RANK", "one"},
                     {"MASTER_ADDR", "h"},
                     {"MASTER_PORT", "5"}}),
            "LOCAL_RANK='one' is not a non-negative integer");
}

//===----------------------------------------------------------------------===//
// TcpBootstrap
//===----------------------------------------------------------------------===//

TEST(TcpBootstrap, BroadcastsGathersAndWaits) {
  std::vector<std::vector<std::byte>> got(3);
  std::vector<std::vector<std::vector<std::byte>>> gathered(3);
  auto statuses = onTcpRanks(
      3, [&](uint32_t r, comm::Bootstrap &boot, comm::TcpTransport &) {
        EXPECT_EQ(boot.rank(), r);
        EXPECT_EQ(boot.worldSize(), 3u);
        got[r] = r == 0 ? bytesOf<int32_t>({7, 8, 9}) : bytesOf<int32_t>({});
        if (Status s = boot.broadcast(got[r]); !s.ok())
          return s;
        // Blobs of different lengths, one empty.
        std::vector<int32_t> mine(r, int32_t(10 * r));
        auto all = boot.allGather(bytesOf<int32_t>(mine));
        if (!all.ok())
          return all.status();
        gathered[r] = *all;
        return boot.barrier();
      });
  for (const Status &s : statuses)
    ASSERT_TRUE(s.ok()) << s.message();
  for (uint32_t r = 0; r < 3; ++r) {
    EXPECT_EQ(got[r], bytesOf<int32_t>({7, 8, 9})) << "rank " << r;
    ASSERT_EQ(gathered[r].size(), 3u);
    EXPECT_TRUE(gathered[r][0].empty());
    EXPECT_EQ(gathered[r][1], bytesOf<int32_t>({10}));
    EXPECT_EQ(gathered[r][2], bytesOf<int32_t>({20, 20}));
  }
}

TEST(TcpBootstrap, ConnectingToNobodyTimesOutNamingTheAddress) {
  auto port = comm::freeLocalPort();
  ASSERT_TRUE(port.ok()) << port.message();
  auto start = Clock::now();
  auto boot = comm::TcpBootstrap::connect(rankInfo(1, 2, *port),
                                          std::chrono::milliseconds(300));
  ASSERT_FALSE(boot.ok());
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 5);
  EXPECT_TRUE(contains(boot.message(),
                       "connecting to rank 0 at MASTER_ADDR:MASTER_PORT "
                       "(127.0.0.1:" +
                           std::to_string(*port) + ")"))
      << boot.message();
  EXPECT_TRUE(contains(boot.message(), "timed out after")) << boot.message();
}

TEST(TcpBootstrap, RankZeroWaitsForTheOthersThenTimesOut) {
  auto port = comm::freeLocalPort();
  ASSERT_TRUE(port.ok()) << port.message();
  auto boot = comm::TcpBootstrap::connect(rankInfo(0, 3, *port),
                                          std::chrono::milliseconds(300));
  ASSERT_FALSE(boot.ok());
  EXPECT_TRUE(contains(boot.message(), "waiting for 2 of 2 ranks to connect"))
      << boot.message();
}

TEST(TcpBootstrap, NamesTheRanksThatNeverJoined) {
  auto port = comm::freeLocalPort();
  ASSERT_TRUE(port.ok()) << port.message();
  // Of ranks 0-4, rank 2 joins; 1, 3 and 4 never do.
  Status joined;
  std::thread two([&] {
    auto b = comm::TcpBootstrap::connect(rankInfo(2, 5, *port),
                                         std::chrono::milliseconds(500));
    joined = b.ok() ? okStatus() : b.status();
  });
  auto boot = comm::TcpBootstrap::connect(rankInfo(0, 5, *port),
                                          std::chrono::milliseconds(500));
  two.join();
  ASSERT_FALSE(boot.ok());
  EXPECT_TRUE(contains(boot.message(), "(never joined: ranks 1, 3-4)"))
      << boot.message();
  // The rank that joined hears the same list from rank 0.
  ASSERT_FALSE(joined.ok());
  EXPECT_TRUE(contains(joined.message(), "(never joined: ranks 1, 3-4)"))
      << joined.message();
}

TEST(TcpBootstrap, RefusesAMismatchedWorld) {
  auto port = comm::freeLocalPort();
  ASSERT_TRUE(port.ok()) << port.message();
  Status s0, s1;
  std::thread zero([&] {
    auto b = comm::TcpBootstrap::connect(rankInfo(0, 2, *port),
                                         std::chrono::seconds(10));
    s0 = b.ok() ? okStatus() : b.status();
  });
  auto b = comm::TcpBootstrap::connect(rankInfo(1, 3, *port),
                                       std::chrono::seconds(10));
  s1 = b.ok() ? okStatus() : b.status();
  zero.join();
  EXPECT_EQ(s0.message(),
            "rank 0: rank 1 says the world has 3 ranks, rank 0 says 2");
  EXPECT_TRUE(contains(s1.message(), "refused rank 1: rank 1 says the world "
                                     "has 3 ranks, rank 0 says 2"))
      << s1.message();
}

TEST(TcpBootstrap, RefusesAnAddressInUse) {
  auto at = comm::resolve("127.0.0.1", 0, "test");
  ASSERT_TRUE(at.ok());
  auto taken = comm::listenOn(*at, 1);
  ASSERT_TRUE(taken.ok()) << taken.message();
  auto port = comm::localPort(*taken);
  ASSERT_TRUE(port.ok());
  auto boot = comm::TcpBootstrap::connect(rankInfo(0, 2, *port),
                                          std::chrono::seconds(1));
  ASSERT_FALSE(boot.ok());
  EXPECT_TRUE(contains(boot.message(), "rank 0 cannot open the rendezvous at "
                                       "MASTER_ADDR:MASTER_PORT (127.0.0.1:" +
                                           std::to_string(*port) + ")"))
      << boot.message();
  EXPECT_TRUE(contains(boot.message(), "Address already in use"))
      << boot.message();
}

TEST(TransportBootstrap, ExchangesOverTheInProcessTransport) {
  comm::InProcessWorld world(3);
  std::vector<std::vector<std::byte>> got(3);
  std::vector<std::vector<std::vector<std::byte>>> gathered(3);
  std::vector<Status> statuses(3);
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < 3; ++r)
    threads.emplace_back([&, r] {
      auto t = world.transport(r);
      comm::TransportBootstrap boot(*t);
      got[r] = r == 0 ? bytesOf<int32_t>({7, 8}) : bytesOf<int32_t>({1});
      statuses[r] = boot.broadcast(got[r]);
      if (statuses[r].ok()) {
        auto all = boot.allGather(
            bytesOf<int32_t>(std::vector<int32_t>(2 - r, int32_t(r))));
        statuses[r] = all.ok() ? boot.barrier() : all.status();
        if (all.ok())
          gathered[r] = *all;
      }
      world.finish(r);
    });
  for (std::thread &t : threads)
    t.join();
  for (uint32_t r = 0; r < 3; ++r) {
    ASSERT_TRUE(statuses[r].ok()) << statuses[r].message();
    EXPECT_EQ(got[r], bytesOf<int32_t>({7, 8}));
    ASSERT_EQ(gathered[r].size(), 3u);
    EXPECT_EQ(gathered[r][0], bytesOf<int32_t>({0, 0}));
    EXPECT_EQ(gathered[r][1], bytesOf<int32_t>({1}));
    EXPECT_TRUE(gathered[r][2].empty());
  }
}

//===----------------------------------------------------------------------===//
// TcpTransport
//===----------------------------------------------------------------------===//

TEST(TcpTransport, SumsBitForBitAsInProcess) {
  // Sums whose value depends on the order of addition: random f32 over
  // wide magnitudes, f16, bf16, and wrapping integers; the group lists
  // ranks out of order.
  const uint32_t world = 4;
  const int64_t n = 4096;
  std::mt19937 rng(7);
  std::vector<std::vector<float>> f32s(world, std::vector<float>(n));
  std::vector<HostTensor> halves, brains, ints32;
  for (uint32_t r = 0; r < world; ++r) {
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) {
      float mag = std::ldexp(1.0f, int(rng() % 40) - 20);
      f32s[r][i] = (rng() % 2 ? mag : -mag) * (1 + (rng() % 1000) / 1000.0f);
      v[i] = f32s[r][i] / 1024;
    }
    halves.push_back(f16({n}, v));
    brains.push_back(bf16({n}, v));
    std::vector<int32_t> iv(n);
    for (int64_t i = 0; i < n; ++i)
      iv[i] = static_cast<int32_t>(rng());
    ints32.push_back(i32({n}, iv));
  }
  comm::Group group = {3, 1, 0, 2};
  auto sumAll = [&](uint32_t r, comm::Transport &t,
                    std::vector<std::byte> &out) {
    struct Case {
      DType dtype;
      const std::byte *in;
    } cases[] = {{DType::F32, raw(f32s[r].data())},
                 {DType::F16, halves[r].bytes.data()},
                 {DType::BF16, brains[r].bytes.data()},
                 {DType::I32, ints32[r].bytes.data()}};
    for (const Case &c : cases) {
      std::vector<std::byte> sum(n * dtypeSize(c.dtype));
      if (Status s = t.allReduceSum(group, c.dtype, c.in, sum.data(), n);
          !s.ok())
        return s;
      out.insert(out.end(), sum.begin(), sum.end());
    }
    return okStatus();
  };
  std::vector<std::vector<std::byte>> tcp(world), local(world);
  auto statuses = onTcpRanks(
      world, [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        return sumAll(r, t, tcp[r]);
      });
  for (const Status &s : statuses)
    ASSERT_TRUE(s.ok()) << s.message();
  comm::InProcessWorld rendezvous(world);
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      auto t = rendezvous.transport(r);
      EXPECT_TRUE(sumAll(r, *t, local[r]).ok());
      rendezvous.finish(r);
    });
  for (std::thread &t : threads)
    t.join();
  for (uint32_t r = 0; r < world; ++r) {
    ASSERT_EQ(tcp[r].size(), local[r].size());
    EXPECT_TRUE(tcp[r] == local[r]) << "rank " << r;
  }
  // And the sum is right: f32 of rank order (((0 + 1) + 2) + 3).
  for (int64_t i = 0; i < 8; ++i) {
    float expected = ((f32s[0][i] + f32s[1][i]) + f32s[2][i]) + f32s[3][i];
    float got;
    std::memcpy(&got, tcp[2].data() + i * 4, 4);
    EXPECT_EQ(got, expected) << i;
  }
}

TEST(TcpTransport, GathersInGroupOrderAndKeepsGroupsApart) {
  std::vector<std::vector<std::byte>> gathered(4), pairs(4);
  auto statuses =
      onTcpRanks(4, [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        std::vector<std::byte> mine = bytesOf<int16_t>({int16_t(r), 7});
        gathered[r].resize(16);
        if (Status s =
                t.allGather({2, 0, 3, 1}, mine.data(), 4, gathered[r].data());
            !s.ok())
          return s;
        // Two groups of two, each its own exchange.
        comm::Group pair = r < 2 ? comm::Group{0, 1} : comm::Group{2, 3};
        pairs[r].resize(8);
        return t.allGather(pair, mine.data(), 4, pairs[r].data());
      });
  for (const Status &s : statuses)
    ASSERT_TRUE(s.ok()) << s.message();
  for (uint32_t r = 0; r < 4; ++r)
    EXPECT_EQ(gathered[r], bytesOf<int16_t>({2, 7, 0, 7, 3, 7, 1, 7}));
  EXPECT_EQ(pairs[1], bytesOf<int16_t>({0, 7, 1, 7}));
  EXPECT_EQ(pairs[3], bytesOf<int16_t>({2, 7, 3, 7}));
}

TEST(TcpTransport, SendsInOrderPerTagWithoutWaiting) {
  std::vector<std::byte> received(12), big(3 << 20), bigGot(3 << 20);
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = std::byte(i * 31 % 251);
  auto statuses =
      onTcpRanks(2, [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        if (r == 0) {
          // Larger than socket buffers: the send still returns at once.
          if (Status s = t.send(1, 9, big.data(), big.size()); !s.ok())
            return s;
          for (int32_t v : {5, 6, 7}) {
            std::vector<std::byte> m = bytesOf<int32_t>({v});
            if (Status s = t.send(1, v == 6 ? 4 : 3, m.data(), 4); !s.ok())
              return s;
          }
          return t.flush();
        }
        // Tag 4 first, though it was sent between the two of tag 3.
        if (Status s = t.recv(0, 4, received.data() + 8, 4); !s.ok())
          return s;
        if (Status s = t.recv(0, 3, received.data(), 4); !s.ok())
          return s;
        if (Status s = t.recv(0, 3, received.data() + 4, 4); !s.ok())
          return s;
        return t.recv(0, 9, bigGot.data(), bigGot.size());
      });
  for (const Status &s : statuses)
    ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(received, bytesOf<int32_t>({5, 7, 6}));
  EXPECT_TRUE(bigGot == big);
}

TEST(TcpTransport, RefusesAMessageOfTheWrongSizeAndMismatchedCalls) {
  auto statuses =
      onTcpRanks(2, [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        std::vector<std::byte> buf(8);
        if (r == 0) {
          if (Status s = t.send(1, 0, buf.data(), 8); !s.ok())
            return s;
          float x = 1, y;
          return t.allReduceSum({0, 1}, DType::F32, raw(&x),
                                reinterpret_cast<std::byte *>(&y), 1);
        }
        Status bad = t.recv(0, 0, buf.data(), 4);
        EXPECT_EQ(bad.message(), "recv from rank 0 (tag 0): the message holds "
                                 "8 bytes, expected 4");
        std::vector<std::byte> all(16);
        return t.allGather({0, 1}, buf.data(), 8, all.data());
      });
  EXPECT_EQ(statuses[0].message(),
            "all-reduce over ranks [0, 1] (call 0 of the group): rank 0 calls "
            "all-reduce on 4 bytes of f32, rank 1 called all-gather on 8 "
            "bytes of u8");
  EXPECT_EQ(statuses[1].message(),
            "all-gather over ranks [0, 1] (call 0 of the group): rank 1 calls "
            "all-gather on 8 bytes of u8, rank 0 called all-reduce on 4 bytes "
            "of f32");
}

TEST(TcpTransport, AFailedRankEndsTheOthersAtOnce) {
  auto start = Clock::now();
  std::vector<double> seconds(3);
  auto statuses = onTcpRanks(
      3,
      [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        if (r == 1) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          t.fail("step 3 'matmul': out of memory");
          return errorStatus("failed");
        }
        float x = 1, y;
        Status s = t.allReduceSum({0, 1, 2}, DType::F32, raw(&x),
                                  reinterpret_cast<std::byte *>(&y), 1);
        seconds[r] =
            std::chrono::duration<double>(Clock::now() - start).count();
        if (!s.ok() && t.peerFailure()) {
          // Passing it on names rank 1 still.
          t.fail(s.message());
          EXPECT_EQ(t.peerFailure()->first, 1u);
        }
        return s;
      },
      std::chrono::seconds(60));
  for (uint32_t r : {0u, 2u}) {
    EXPECT_EQ(statuses[r].message(),
              "rank 1 failed: step 3 'matmul': out of memory");
    EXPECT_LT(seconds[r], 10) << "rank " << r;
  }
}

TEST(TcpTransport, TimesOutNamingTheMissingRank) {
  auto statuses = onTcpRanks(
      2,
      [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        float x = 1, y;
        if (r == 1) {
          std::this_thread::sleep_for(std::chrono::milliseconds(2500));
          return okStatus();
        }
        return t.allReduceSum({0, 1}, DType::F32, raw(&x),
                              reinterpret_cast<std::byte *>(&y), 1);
      },
      std::chrono::seconds(1));
  EXPECT_EQ(statuses[0].message(),
            "timed out after 1 s in all-reduce over ranks [0, 1], waiting "
            "for rank 1 (another rank failed, hangs or runs a different "
            "plan)");
}

TEST(TcpTransport, AWaitForSeveralRanksNamesTheOneTheOthersWaitFor) {
  // Rank 2 hangs. Rank 1 is stuck behind it (in a call of ranks 1 and 2)
  // and times out a moment after rank 0, which waits for ranks 1 and 2:
  // rank 0 reports rank 1's news, naming rank 2, rather than its own
  // timeout naming both.
  auto statuses = onTcpRanks(
      3,
      [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        float x = 1, y;
        auto *out = reinterpret_cast<std::byte *>(&y);
        if (r == 2) {
          std::this_thread::sleep_for(std::chrono::milliseconds(3500));
          return okStatus();
        }
        if (r == 0)
          return t.allReduceSum({0, 1, 2}, DType::F32, raw(&x), out, 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        Status s = t.allReduceSum({1, 2}, DType::F32, raw(&x), out, 1);
        if (!s.ok())
          t.fail(s.message());
        return s;
      },
      std::chrono::seconds(1));
  EXPECT_EQ(statuses[0].message(),
            "rank 1 failed: timed out after 1 s in all-reduce over ranks [1, "
            "2], waiting for rank 2 (another rank failed, hangs or runs a "
            "different plan)");
}

TEST(TcpTransport, AFinishedPeerEndsAWaitForIt) {
  auto statuses =
      onTcpRanks(2, [&](uint32_t r, comm::Bootstrap &, comm::TcpTransport &t) {
        if (r == 0)
          return okStatus(); // finishes (says goodbye) without sending
        std::byte b[4];
        return t.recv(0, 0, b, 4);
      });
  EXPECT_TRUE(statuses[0].ok()) << statuses[0].message();
  EXPECT_EQ(statuses[1].message(),
            "recv from rank 0 (tag 0), waiting for the message: rank 0 has "
            "finished (the ranks' plans do not match)");
}

//===----------------------------------------------------------------------===//
// The MPI bootstrap: only under mpirun (test/runtime/mpirun.test runs it
// with two processes).
//===----------------------------------------------------------------------===//

TEST(MpiBootstrap, BroadcastsGathersAndWaits) {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") || !comm::MpiSession::available())
    GTEST_SKIP() << "not started by mpirun";
  auto session = comm::MpiSession::init(std::chrono::seconds(30));
  ASSERT_TRUE(session.ok()) << session.message();
  comm::Bootstrap &boot = (*session)->bootstrap();
  uint32_t rank = boot.rank(), size = boot.worldSize();
  EXPECT_LT(boot.localRank(), boot.localSize());
  std::vector<std::byte> data =
      rank == 0 ? bytesOf<int32_t>({4, 5}) : bytesOf<int32_t>({});
  ASSERT_TRUE(boot.broadcast(data).ok());
  EXPECT_EQ(data, bytesOf<int32_t>({4, 5}));
  std::vector<int32_t> mine(rank, int32_t(rank));
  auto all = boot.allGather(bytesOf<int32_t>(mine));
  ASSERT_TRUE(all.ok()) << all.message();
  ASSERT_EQ(all->size(), size);
  for (uint32_t r = 0; r < size; ++r)
    EXPECT_EQ((*all)[r], bytesOf<int32_t>(std::vector<int32_t>(r, r)));
  EXPECT_TRUE(boot.barrier().ok());
}

// Data-parallel replicas over processes (weft serve --dp with --nproc or a
// launcher): a replica's ranks as a slice of the job's transport, and the
// link over which the serving process drives a replica's rank 0 (steps,
// keep-alives, reports, stop), with its failures: a failing step, a link
// closed, a side gone silent, an abort from another thread.
#include "runtime/comm/InProcessTransport.h"
#include "runtime/comm/Socket.h"
#include "runtime/generate/RankDriver.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <thread>

using namespace weft::runtime;
using namespace weft::runtime::generate;
using Clock = std::chrono::steady_clock;

namespace {

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

TEST(SliceTransportTest, TwoReplicasOfTwoRanksKeepToThemselves) {
  comm::InProcessWorld world(4, std::chrono::seconds(10));
  // Replica d is ranks 2d and 2d+1; each sums its own values and passes a
  // message from its rank 0 to its rank 1.
  std::vector<float> sums(4);
  std::vector<int32_t> received(4, -1);
  std::vector<Status> statuses(4, okStatus());
  std::vector<std::thread> threads;
  for (uint32_t g = 0; g < 4; ++g)
    threads.emplace_back([&, g] {
      auto inner = world.transport(g);
      uint32_t replica = g / 2;
      comm::SliceTransport slice(*inner, replica * 2, 2);
      EXPECT_EQ(slice.rank(), g % 2);
      EXPECT_EQ(slice.worldSize(), 2u);
      comm::Group both = {0, 1};
      Status s = slice.prepare(std::vector<comm::Group>{both});
      float mine = static_cast<float>(10 * replica + g % 2 + 1), sum = 0;
      if (s.ok())
        s = slice.allReduceSum(both, DType::F32,
                               reinterpret_cast<const std::byte *>(&mine),
                               reinterpret_cast<std::byte *>(&sum), 1);
      int32_t message = static_cast<int32_t>(100 + replica);
      if (s.ok() && slice.rank() == 0)
        s = slice.send(1, 7, reinterpret_cast<const std::byte *>(&message),
                       sizeof(message));
      if (s.ok() && slice.rank() == 1)
        s = slice.recv(0, 7, reinterpret_cast<std::byte *>(&received[g]),
                       sizeof(int32_t));
      if (s.ok())
        s = slice.flush();
      sums[g] = sum;
      statuses[g] = s;
      world.finish(g);
    });
  for (std::thread &t : threads)
    t.join();
  for (const Status &s : statuses)
    EXPECT_TRUE(s.ok()) << s.message();
  // Replica 0: 1 + 2; replica 1: 11 + 12.
  EXPECT_EQ(sums, (std::vector<float>{3, 3, 23, 23}));
  EXPECT_EQ(received[1], 100);
  EXPECT_EQ(received[3], 101);
}

/// A replica's ranks as the link's far end sees them: answers each step
/// with ids made from what it was sent, and fails the step "boom".
class FakeDriver : public StepDriver {
public:
  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) override {
    if (entry == "boom")
      return errorStatus("rank 2 failed: on purpose");
    lastEntry = entry;
    lastInputs.clear();
    for (const NpyArray *a : inputs)
      lastInputs.push_back(*a);
    std::vector<int32_t> ids = {static_cast<int32_t>(entry.size()),
                                static_cast<int32_t>(inputs.size())};
    for (const NpyArray *a : inputs)
      for (std::byte b : a->data)
        ids.push_back(static_cast<int32_t>(b));
    return ids;
  }
  Status keepAlive() override {
    ++keepAlives;
    return okStatus();
  }
  Result<std::vector<RankCounters>> report() override {
    std::vector<RankCounters> all(2);
    all[0].steps = 5;
    all[0].stepSeconds = 0.25;
    all[1].steps = 5;
    all[1].collectiveSeconds = 0.125;
    all[1].hardware.push_back({"weft:gpu_power_watts", "gpu=\"1\"", 310.5});
    return all;
  }
  Status stop() override {
    stopped = true;
    return okStatus();
  }

  std::string lastEntry;
  std::vector<NpyArray> lastInputs;
  int keepAlives = 0;
  bool stopped = false;
};

/// Two connected nonblocking sockets: the serving process's end and the
/// replica's.
std::pair<comm::Socket, comm::Socket> socketPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  for (int fd : fds)
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return {comm::Socket(fds[0]), comm::Socket(fds[1])};
}

TEST(ReplicaLinkTest, StepsKeepAlivesReportsAndStopGoThrough) {
  auto [front, back] = socketPair();
  FakeDriver driver;
  Status served = errorStatus("not run");
  std::thread replica([&, &back = back] {
    served = serveReplicaLink(driver, back, std::chrono::seconds(10));
  });
  ReplicaLink link(std::move(front), std::chrono::seconds(10), 3);
  ASSERT_TRUE(link.waitReady().ok());

  NpyArray tokens{"input_ids", DType::I32, {1, 2}, {}};
  for (int b : {3, 1, 4, 1, 5, 9, 2, 6})
    tokens.data.push_back(static_cast<std::byte>(b));
  NpyArray empty{"positions", DType::I64, {0}, {}};
  const NpyArray *inputs[] = {&tokens, &empty};
  auto ids = link.runStep("decode@4", inputs);
  ASSERT_TRUE(ids.ok()) << ids.message();
  EXPECT_EQ(*ids, (std::vector<int32_t>{8, 2, 3, 1, 4, 1, 5, 9, 2, 6}));
  EXPECT_TRUE(link.keepAlive().ok());
  auto counters = link.report();
  ASSERT_TRUE(counters.ok()) << counters.message();
  ASSERT_EQ(counters->size(), 2u);
  EXPECT_EQ((*counters)[0].steps, 5u);
  EXPECT_EQ((*counters)[0].stepSeconds, 0.25);
  EXPECT_EQ((*counters)[1].collectiveSeconds, 0.125);
  ASSERT_EQ((*counters)[1].hardware.size(), 1u);
  EXPECT_EQ((*counters)[1].hardware[0].name, "weft:gpu_power_watts");
  EXPECT_EQ((*counters)[1].hardware[0].labels, "gpu=\"1\"");
  EXPECT_EQ((*counters)[1].hardware[0].value, 310.5);
  EXPECT_TRUE(link.stop().ok());
  replica.join();
  EXPECT_TRUE(served.ok()) << served.message();

  // What the replica ran is what was sent.
  EXPECT_EQ(driver.lastEntry, "decode@4");
  ASSERT_EQ(driver.lastInputs.size(), 2u);
  EXPECT_EQ(driver.lastInputs[0].name, "input_ids");
  EXPECT_EQ(driver.lastInputs[0].dtype, DType::I32);
  EXPECT_EQ(driver.lastInputs[0].shape, (Shape{1, 2}));
  EXPECT_EQ(driver.lastInputs[0].data, tokens.data);
  EXPECT_EQ(driver.lastInputs[1].shape, (Shape{0}));
  EXPECT_EQ(driver.keepAlives, 1);
  EXPECT_TRUE(driver.stopped);
}

TEST(ReplicaLinkTest, AFailingStepReachesTheServingProcessFirst) {
  auto [front, back] = socketPair();
  FakeDriver driver;
  Status served = okStatus();
  bool lost = false;
  std::thread replica([&, &back = back] {
    served = serveReplicaLink(driver, back, std::chrono::seconds(10), &lost);
  });
  ReplicaLink link(std::move(front), std::chrono::seconds(10), 3);
  ASSERT_TRUE(link.waitReady().ok());
  auto ids = link.runStep("boom", {});
  EXPECT_FALSE(ids.ok());
  EXPECT_TRUE(contains(ids.message(), "rank 2 failed: on purpose"))
      << ids.message();
  replica.join();
  // The replica's rank 0 ends with the same error.
  EXPECT_FALSE(served.ok());
  EXPECT_TRUE(contains(served.message(), "on purpose")) << served.message();
  EXPECT_FALSE(lost); // its own ranks failed, not the link
  EXPECT_FALSE(driver.stopped);
}

TEST(ReplicaLinkTest, TheServingProcessGoneEndsTheReplica) {
  auto [front, back] = socketPair();
  FakeDriver driver;
  Status served = okStatus();
  bool lost = false;
  std::thread replica([&, &back = back] {
    served = serveReplicaLink(driver, back, std::chrono::seconds(30), &lost);
  });
  {
    ReplicaLink link(std::move(front), std::chrono::seconds(10), 3);
    ASSERT_TRUE(link.waitReady().ok());
  } // closes the link
  Clock::time_point start = Clock::now();
  replica.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(served.ok());
  EXPECT_TRUE(contains(served.message(), comm::kClosedText))
      << served.message();
  EXPECT_TRUE(lost);
}

TEST(ReplicaLinkTest, SilenceOnEitherSideTimesOut) {
  // A replica that never answers: the serving process's call fails after
  // the link's timeout, naming whom it waited for.
  {
    auto [front, back] = socketPair();
    ReplicaLink link(std::move(front), std::chrono::milliseconds(200), 3);
    Status ready = link.waitReady();
    EXPECT_FALSE(ready.ok());
    EXPECT_TRUE(contains(ready.message(), "timed out")) << ready.message();
    EXPECT_TRUE(contains(ready.message(), "load the model")) << ready.message();
    auto ids = link.runStep("decode@1", {});
    EXPECT_FALSE(ids.ok());
    EXPECT_TRUE(contains(ids.message(), "rank 3 (the replica's rank 0)"))
        << ids.message();
  }
  // A serving process that sends nothing (not even keep-alives).
  {
    auto [front, back] = socketPair();
    FakeDriver driver;
    Status served =
        serveReplicaLink(driver, back, std::chrono::milliseconds(200));
    EXPECT_FALSE(served.ok());
    EXPECT_TRUE(contains(served.message(), "timed out")) << served.message();
    EXPECT_TRUE(contains(served.message(), "serving process"))
        << served.message();
  }
}

TEST(ReplicaLinkTest, AbortEndsAWaitingCallAtOnce) {
  auto [front, back] = socketPair();
  ReplicaLink link(std::move(front), std::chrono::seconds(60), 3);
  Status ready = okStatus();
  std::thread waiter([&] { ready = link.waitReady(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Clock::time_point start = Clock::now();
  link.abort();
  waiter.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(ready.ok());
}

TEST(ReplicaLinkTest, MalformedFramesAreRefused) {
  // A frame claiming more than the link's bound, and an unknown kind.
  for (int64_t header0 : {int64_t{1}, int64_t{99}}) {
    auto [front, back] = socketPair();
    int64_t header[2] = {header0, header0 == 1 ? -5 : 0};
    ASSERT_EQ(::write(front.get(), header, sizeof(header)),
              static_cast<ssize_t>(sizeof(header)));
    FakeDriver driver;
    Status served = serveReplicaLink(driver, back, std::chrono::seconds(5));
    EXPECT_FALSE(served.ok());
    EXPECT_TRUE(contains(served.message(), "malformed")) << served.message();
  }
}

} // namespace

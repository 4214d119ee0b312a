// weft serve: which replica a new request goes to (--dp), and the API key
// check (--api-key).
#include "runtime/serve/Server.h"

#include <gtest/gtest.h>

using weft::runtime::serve::bearerMatches;
using weft::runtime::serve::pickReplica;

namespace {

std::vector<size_t> route(std::vector<uint64_t> depths, size_t requests) {
  // Each request joins the queue it was sent to, as the server's does.
  std::vector<size_t> chosen;
  size_t last = 0;
  for (size_t i = 0; i < requests; ++i) {
    last = pickReplica(depths, last);
    chosen.push_back(last);
    ++depths[last];
  }
  return chosen;
}

} // namespace

TEST(ServeRouting, TheShortestQueueWins) {
  std::vector<uint64_t> depths = {5, 2, 7};
  EXPECT_EQ(pickReplica(depths, 0), 1u);
  EXPECT_EQ(pickReplica(depths, 1), 1u);
  EXPECT_EQ(pickReplica(depths, 2), 1u);
}

TEST(ServeRouting, EqualQueuesTakeTurns) {
  // An idle server: the requests go round the replicas, starting after the
  // previous choice.
  EXPECT_EQ(route({0, 0, 0}, 6), (std::vector<size_t>{1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(pickReplica(std::vector<uint64_t>{3, 3}, 1), 0u);
}

TEST(ServeRouting, ABusyReplicaIsLeftUntilTheOthersCatchUp) {
  // Replica 0 has 4 sequences; the next 4 requests fill replica 1 and 2
  // to its depth before it gets one.
  std::vector<size_t> chosen = route({4, 2, 2}, 7);
  EXPECT_EQ(std::count(chosen.begin(), chosen.begin() + 4, 0), 0);
  EXPECT_EQ(std::count(chosen.begin(), chosen.end(), 0), 1);
  EXPECT_EQ(std::count(chosen.begin(), chosen.end(), 1), 3);
  EXPECT_EQ(std::count(chosen.begin(), chosen.end(), 2), 3);
}

TEST(ServeRouting, OneReplica) {
  EXPECT_EQ(pickReplica(std::vector<uint64_t>{9}, 0), 0u);
}

TEST(ServeApiKey, BearerTokenMustEqualTheKey) {
  EXPECT_TRUE(bearerMatches("Bearer s3cret", "s3cret"));
  // The scheme is case-insensitive (RFC 9110), the token is not.
  EXPECT_TRUE(bearerMatches("bearer s3cret", "s3cret"));
  EXPECT_FALSE(bearerMatches("Bearer S3cret", "s3cret"));
  EXPECT_FALSE(bearerMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(bearerMatches("Bearer s3crett", "s3cret"));
  EXPECT_FALSE(bearerMatches("Bearer  s3cret", "s3cret"));
  EXPECT_FALSE(bearerMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(bearerMatches("s3cret", "s3cret"));
  EXPECT_FALSE(bearerMatches("", "s3cret"));
  EXPECT_FALSE(bearerMatches("Bearer ", "s3cret"));
}

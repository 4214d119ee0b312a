// A small fixed pool of threads that runs parallel loops.
#ifndef WEFT_RUNTIME_SUPPORT_THREADPOOL_H
#define WEFT_RUNTIME_SUPPORT_THREADPOOL_H

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace weft::runtime {

/// Runs parallel loops on a fixed set of threads (the caller takes part).
/// A loop started from inside a loop body runs serially.
class ThreadPool {
public:
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;

  /// `threads` 0 means std::thread::hardware_concurrency(). Throws
  /// std::runtime_error, having ended the threads it started, when the
  /// system refuses a thread.
  explicit ThreadPool(unsigned threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// Threads that run a loop, the caller included.
  unsigned size() const { return static_cast<unsigned>(workers.size()) + 1; }

  /// Calls fn(begin, end) on disjoint ranges covering [0, n), each of at
  /// least `grain` items except the last; returns when all are done. An
  /// exception thrown by fn is rethrown here once every range has ended.
  void parallelFor(int64_t n, int64_t grain, const RangeFn &fn);

private:
  /// Ends and joins every worker.
  void stop();
  void workerLoop();
  void runChunks();

  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, done;
  const RangeFn *job = nullptr;
  int64_t jobSize = 0, chunkSize = 0, nextChunk = 0, chunksLeft = 0;
  uint64_t generation = 0;
  std::exception_ptr failure;
  bool stopping = false;
};

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_THREADPOOL_H

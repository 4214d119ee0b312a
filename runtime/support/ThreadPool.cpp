// A small fixed pool of threads that runs parallel loops.
#include "runtime/support/ThreadPool.h"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace weft::runtime {

static thread_local bool insideLoop = false;

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  try {
    for (unsigned i = 1; i < threads; ++i)
      workers.emplace_back([this] { workerLoop(); });
  } catch (const std::system_error &e) {
    // The threads already started wait on this pool: end them before its
    // members go away, then say why.
    size_t started = workers.size();
    stop();
    throw std::runtime_error("cannot start " + std::to_string(threads) +
                             " threads (" + std::to_string(started + 1) +
                             " started): " + e.what() +
                             "; use fewer (--threads)");
  }
}

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  wake.notify_all();
  for (std::thread &t : workers)
    t.join();
  workers.clear();
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, const RangeFn &fn) {
  if (n <= 0)
    return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, size() * 4);
  if (chunks <= 1 || workers.empty() || insideLoop) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    job = &fn;
    jobSize = n;
    chunkSize = (n + chunks - 1) / chunks;
    nextChunk = 0;
    chunksLeft = (n + chunkSize - 1) / chunkSize;
    ++generation;
  }
  wake.notify_all();
  runChunks();
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [this] { return chunksLeft == 0; });
  job = nullptr;
  if (failure) // a loop body threw (e.g. bad_alloc): rethrow to the caller
    std::rethrow_exception(std::exchange(failure, nullptr));
}

void ThreadPool::runChunks() {
  insideLoop = true;
  std::unique_lock<std::mutex> lock(mutex);
  while (job && nextChunk * chunkSize < jobSize) {
    int64_t begin = nextChunk++ * chunkSize;
    int64_t end = std::min(begin + chunkSize, jobSize);
    const RangeFn *fn = job;
    lock.unlock();
    std::exception_ptr thrown;
    try {
      (*fn)(begin, end);
    } catch (...) {
      thrown = std::current_exception();
    }
    lock.lock();
    if (thrown && !failure)
      failure = thrown;
    if (--chunksLeft == 0)
      done.notify_all();
  }
  insideLoop = false;
}

void ThreadPool::workerLoop() {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, [&] { return stopping || generation != seen; });
      if (stopping)
        return;
      seen = generation;
    }
    runChunks();
  }
}

} // namespace weft::runtime

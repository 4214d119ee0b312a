// How a GPU rank exchanges device data with the other ranks: collectives
// over groups and point-to-point sends, all enqueued on a stream (and so
// capturable into a CUDA graph). NCCL implements it (NcclComm.h).
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_DEVICECOMM_H
#define WEFT_RUNTIME_BACKENDS_CUDA_DEVICECOMM_H

#include "runtime/artifact/DType.h"
#include "runtime/comm/Transport.h"
#include "runtime/support/Status.h"

#include <cuda_runtime.h>

namespace weft::runtime::cuda {

class DeviceComm {
public:
  virtual ~DeviceComm() = default;
  /// out = the sum over `group` of every member's `in` (`count` elements).
  virtual Status allReduceSum(const comm::Group &group, DType dtype,
                              const void *in, void *out, int64_t count,
                              cudaStream_t stream) = 0;
  /// out = every member's `bytes` bytes of `in`, in group order.
  virtual Status allGather(const comm::Group &group, const void *in,
                           uint64_t bytes, void *out, cudaStream_t stream) = 0;
  /// To / from rank `peer` of the world, in order per peer.
  virtual Status send(uint32_t peer, const void *data, uint64_t bytes,
                      cudaStream_t stream) = 0;
  virtual Status recv(uint32_t peer, void *data, uint64_t bytes,
                      cudaStream_t stream) = 0;
  /// Waits for `stream`, watching for another rank's failure and the
  /// timeout; on either, aborts the communicators and says why.
  virtual Status synchronize(cudaStream_t stream) = 0;
};

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_DEVICECOMM_H

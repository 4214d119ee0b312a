// Registers the backend "cuda" (BackendRegistry.h): `--backend cuda`.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_CUDABACKEND_H
#define WEFT_RUNTIME_BACKENDS_CUDA_CUDABACKEND_H

namespace weft::runtime::cuda {

/// Each rank on its own GPU of its host (ranks as threads: rank r on GPU r;
/// launched processes: by their local rank), NCCL between them.
void registerCudaBackend();

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_CUDABACKEND_H

// MpiSession where CMake found no MPI: it explains that this binary lacks
// it.
#include "runtime/comm/MpiTransport.h"

#include <cstdlib>

namespace weft::runtime::comm {

struct MpiSession::Impl {};

bool MpiSession::available() { return false; }

MpiSession::MpiSession(std::unique_ptr<Impl> impl) : impl(std::move(impl)) {}

Result<std::unique_ptr<MpiSession>>
MpiSession::init(std::chrono::duration<double>) {
  return errorStatus("this weft was built without MPI (CMake found none), so "
                     "it cannot run as one rank of an mpirun or srun job; "
                     "install Open MPI (libopenmpi-dev) and rebuild, or run "
                     "without a launcher to run every rank as a thread");
}

MpiSession::~MpiSession() = default;
uint32_t MpiSession::rank() const { return 0; }
uint32_t MpiSession::worldSize() const { return 1; }
uint32_t MpiSession::localSize() const { return 1; }

Transport &MpiSession::transport() { std::abort(); }
Bootstrap &MpiSession::bootstrap() { std::abort(); }

void MpiSession::abort(int code) { std::_Exit(code); }

} // namespace weft::runtime::comm

#include <mpi.h>

// OpenMPI's predefined handles are addresses of global structs behind macros; Swift cannot import the macros,
// so each one used from Swift gets a getter.
static inline MPI_Comm graft_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype graft_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype graft_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype graft_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype graft_mpi_uint8(void) { return MPI_UINT8_T; }
static inline MPI_Op graft_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op graft_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op graft_mpi_min(void) { return MPI_MIN; }
static inline void *graft_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *graft_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler graft_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }

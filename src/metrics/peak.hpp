// The measured compute limit of this rank: a calibration sgemm on the rank's own BLAS threads.
#pragma once

namespace ellm {

// Best FLOP/s of repeated n×n×n sgemm (random operands) over at least min_seconds.
double measure_sgemm_peak(int n = 1024, double min_seconds = 0.3);

}  // namespace ellm

// A stand-in for libnvidia-ml.so.1 with the entry points efficientllm loads (src/metrics/
// energy_nvml.cpp), so the NVML reader is tested on machines without NVIDIA hardware.
//   FAKE_NVML_DEVICES   number of GPUs (default 2)
//   FAKE_NVML_FAIL_INIT nvmlInit_v2 fails with error 999 when set
// Each energy read of device i adds (i + 1) J: consecutive reads differ by exactly that.
#include <cstdio>
#include <cstdlib>

namespace {
unsigned long long g_millijoules[16];
int device_count() {
  const char* n = std::getenv("FAKE_NVML_DEVICES");
  return n ? std::atoi(n) : 2;
}
}  // namespace

extern "C" {

int nvmlInit_v2() { return std::getenv("FAKE_NVML_FAIL_INIT") ? 999 : 0; }
int nvmlShutdown() { return 0; }
const char* nvmlErrorString(int rc) { return rc == 999 ? "Unknown Error" : "fake error"; }

int nvmlDeviceGetCount_v2(unsigned* count) {
  *count = unsigned(device_count());
  return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned index, void** device) {
  if (int(index) >= device_count()) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = &g_millijoules[index];
  return 0;
}

int nvmlDeviceGetName(void* device, char* name, unsigned length) {
  std::snprintf(name, length, "Fake GPU %ld", long(static_cast<unsigned long long*>(device) - g_millijoules));
  return 0;
}

int nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* millijoules) {
  auto* counter = static_cast<unsigned long long*>(device);
  *counter += 1000ull * unsigned(counter - g_millijoules + 1);
  *millijoules = *counter;
  return 0;
}

}  // extern "C"

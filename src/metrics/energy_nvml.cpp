// NVML GPU energy, loaded with dlopen at run time: the build needs no NVIDIA library, and a
// machine without one reports why it has no GPU energy instead of failing to start.
#include <dlfcn.h>

#include "metrics/energy.hpp"

namespace ellm::energy {
namespace {

// The few NVML entry points used, with the C types of nvml.h (nvmlReturn_t is an int enum,
// nvmlDevice_t an opaque pointer; NVML_SUCCESS is 0).
using NvmlDevice = void*;
using InitFn = int (*)();
using CountFn = int (*)(unsigned*);
using HandleFn = int (*)(unsigned, NvmlDevice*);
using EnergyFn = int (*)(NvmlDevice, unsigned long long*);  // millijoules since the driver loaded
using NameFn = int (*)(NvmlDevice, char*, unsigned);
using ErrorFn = const char* (*)(int);

class NvmlReader : public Reader {
 public:
  ~NvmlReader() override {
    if (shutdown_) shutdown_();
    if (lib_) dlclose(lib_);
  }
  std::string source() const override { return "nvml"; }
  const std::vector<Domain>& domains() const override { return domains_; }
  bool read(std::vector<std::uint64_t>& uj, std::string& error) override {
    uj.clear();
    for (std::size_t i = 0; i < devices_.size(); i++) {
      unsigned long long mj = 0;
      if (const int rc = energy_(devices_[i], &mj); rc != 0) {
        error = "nvmlDeviceGetTotalEnergyConsumption(" + domains_[i].name + "): " + describe(rc);
        return false;
      }
      uj.push_back(std::uint64_t(mj) * 1000);
    }
    return true;
  }

  // Loads the library and finds the devices; false with `why_not` set on any failure.
  bool open(const std::string& library, std::string& why_not) {
    lib_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib_) {
      const char* e = dlerror();
      why_not = library + ": cannot load (" + (e ? e : "dlopen failed") + ")";
      return false;
    }
    const auto init = symbol<InitFn>("nvmlInit_v2", why_not);
    const auto count = symbol<CountFn>("nvmlDeviceGetCount_v2", why_not);
    const auto handle = symbol<HandleFn>("nvmlDeviceGetHandleByIndex_v2", why_not);
    const auto name = symbol<NameFn>("nvmlDeviceGetName", why_not);
    energy_ = symbol<EnergyFn>("nvmlDeviceGetTotalEnergyConsumption", why_not);
    error_string_ = reinterpret_cast<ErrorFn>(dlsym(lib_, "nvmlErrorString"));  // optional
    if (!init || !count || !handle || !name || !energy_) return false;
    if (const int rc = init(); rc != 0) {
      why_not = "nvmlInit_v2: " + describe(rc);
      return false;
    }
    shutdown_ = reinterpret_cast<InitFn>(dlsym(lib_, "nvmlShutdown"));
    unsigned n = 0;
    if (const int rc = count(&n); rc != 0 || n == 0) {
      why_not = rc != 0 ? "nvmlDeviceGetCount_v2: " + describe(rc) : "NVML sees no GPU";
      return false;
    }
    for (unsigned i = 0; i < n; i++) {
      NvmlDevice d = nullptr;
      char text[96] = "";
      if (const int rc = handle(i, &d); rc != 0) {
        why_not = "nvmlDeviceGetHandleByIndex_v2(" + std::to_string(i) + "): " + describe(rc);
        return false;
      }
      name(d, text, sizeof text);
      devices_.push_back(d);
      domains_.push_back({"nvml" + std::to_string(i) + " " + text, kNoWrap});
    }
    std::vector<std::uint64_t> trial;  // GPUs before Volta have no energy counter
    return read(trial, why_not);
  }

 private:
  template <class Fn>
  Fn symbol(const char* name, std::string& why_not) {
    auto fn = reinterpret_cast<Fn>(dlsym(lib_, name));
    if (!fn && why_not.empty()) why_not = std::string("NVML library has no ") + name;
    return fn;
  }
  std::string describe(int rc) const {
    return error_string_ ? std::string(error_string_(rc)) + " (error " + std::to_string(rc) + ")"
                         : "error " + std::to_string(rc);
  }

  void* lib_ = nullptr;
  InitFn shutdown_ = nullptr;
  EnergyFn energy_ = nullptr;
  ErrorFn error_string_ = nullptr;
  std::vector<NvmlDevice> devices_;
  std::vector<Domain> domains_;
};

}  // namespace

std::unique_ptr<Reader> open_nvml(const std::string& library, std::string& why_not) {
  auto reader = std::make_unique<NvmlReader>();
  if (!reader->open(library, why_not)) return nullptr;
  return reader;
}

}  // namespace ellm::energy

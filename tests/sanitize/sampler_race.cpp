// ThreadSanitizer check of the sampler thread (docs/RELIABILITY.md, "Sanitizers"): the main
// thread marks window edges and sets the tracked bytes while each sampler's thread ticks every
// 0.5 ms; one sampler drives an energy meter (the node's lowest rank), one does not. Not part of
// the build: compiled by hand with -fsanitize=thread (the command is in docs/RELIABILITY.md), so
// the sampler can be checked without a sanitizer build of the whole suite.
#include <chrono>
#include <cstdio>
#include <thread>

#include "metrics/energy_meter.hpp"
#include "metrics/sampler.hpp"

int main() {
  using namespace ellm;
  energy::Meter meter("/", "/nonexistent/libnvidia-ml.so.1", {1, 0});
  meter.set_model(energy::power_model("x", 2, 10, 20));
  for (int run = 0; run < 20; run++) {
    Sampler leader(0.0005, &meter), other(0.0005, nullptr);
    for (int i = 0; i < 400; i++) {
      const Window w = static_cast<Window>(i % kWindows);
      leader.enter(w);
      other.enter(w);
      leader.set_tracked_bytes(i);
      other.set_tracked_bytes(i);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    const Sampler::Result a = leader.stop(), b = other.stop();
    double seconds = 0;
    for (const WindowFigures& f : summarize_windows(a.series)) seconds += f.seconds;
    if (run == 19)
      std::printf("samples %zu / %zu, windows sum %.4f s of %.4f s, joules %s\n", a.series.t_s.size(),
                  b.series.t_s.size(), seconds, a.series.t_s.back(), a.energy["joules"].dump().c_str());
  }
}

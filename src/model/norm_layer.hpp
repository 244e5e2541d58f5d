// A pre-norm layer over the residual stream's R rows: LayerNorm (gain and bias) or RMSNorm
// (gain). Under sequence parallelism a rank normalises only its rows, so its gain and bias
// gradients are partial sums, declared as such and summed once after backward.
#pragma once
#include <string>

#include "layers/norm.hpp"
#include "model/module.hpp"

namespace ellm {

template <class T>
struct NormLayer {
  Norm kind = Norm::LayerNorm;
  int C = 0;
  double eps = 0;
  std::size_t w = kAbsent, b = kAbsent;           // (C), (C) — b absent for RMSNorm
  std::size_t out = 0, mean = kAbsent, rstd = 0;  // (R,C), (R), (R) activations

  void declare(const Declarer& d, const std::string& name, const ModelConfig& m, int R,
               bool sequence_parallel) {
    kind = m.norm;
    C = m.d_model;
    eps = m.norm_eps;
    w = d.param(gain(name + ".w", {C}).partial(sequence_parallel));
    if (kind == Norm::LayerNorm) b = d.param(bias(name + ".b", {C}).partial(sequence_parallel));
    out = d.buffer(name, {R, C});
    if (kind == Norm::LayerNorm) mean = d.buffer(name + "_mean", {R});
    rstd = d.buffer(name + "_rstd", {R});
  }
  // a(out) (R,C) ← norm(x (R,C))
  void forward(const Arenas<T>& a, const T* x, int R) const {
    if (kind == Norm::LayerNorm) {
      layers::layernorm_forward(a.a(out), a.a(mean), a.a(rstd), x, a.p(w), a.p(b), R, C, eps);
    } else {
      layers::rmsnorm_forward(a.a(out), a.a(rstd), x, a.p(w), R, C, eps);
    }
  }
  // dx (R,C) += ∂L/∂x from dout (R,C); gain and bias gradients accumulate.
  void backward(const Arenas<T>& a, T* dx, const T* dout, const T* x, int R) const {
    if (kind == Norm::LayerNorm) {
      layers::layernorm_backward(dx, a.g(w), a.g(b), dout, x, a.p(w), a.a(mean), a.a(rstd), R, C);
    } else {
      layers::rmsnorm_backward(dx, a.g(w), dout, x, a.p(w), a.a(rstd), R, C);
    }
  }
};

}  // namespace ellm

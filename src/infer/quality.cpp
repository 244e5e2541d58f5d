#include "infer/quality.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ellm {
namespace {

// log-softmax of each of n rows of V logits, in place (double accumulation).
void log_softmax(std::vector<double>& out, const float* logits, std::size_t n, int V) {
  out.resize(n * V);
  for (std::size_t r = 0; r < n; r++) {
    const float* row = logits + r * V;
    const double top = *std::max_element(row, row + V);
    double sum = 0;
    for (int v = 0; v < V; v++) sum += std::exp(double(row[v]) - top);
    const double lse = top + std::log(sum);
    for (int v = 0; v < V; v++) out[r * V + v] = double(row[v]) - lse;
  }
}

}  // namespace

Quality compare_quality(Decoder<float>& dec, const LinearWeights* reference,
                        const LinearWeights* candidate, const std::vector<int>& tokens,
                        int max_windows) {
  const int ctx = dec.context(), B = dec.batch(), V = dec.config().vocab_size, first = ctx / 2;
  const long whole = tokens.empty() ? 0 : (long(tokens.size()) - 1) / ctx;  // each needs a next token
  const int windows = int(std::min<long>(max_windows, whole));
  if (windows < 1) {
    throw std::invalid_argument("quality: the evaluation text has " + std::to_string(tokens.size()) +
                                " tokens, fewer than one window of model.seq_len + 1 = " + std::to_string(ctx + 1));
  }
  Quality q;
  q.windows = windows;
  double nll_ref = 0, nll = 0, kl = 0;
  long same = 0;
  std::vector<int> batch(std::size_t(B) * ctx);
  std::vector<double> lp_ref, lp;
  for (int w0 = 0; w0 < windows; w0 += B) {
    const int n = std::min(B, windows - w0);  // windows in this pass; the rest of the batch repeats the last
    for (int b = 0; b < B; b++) {
      const int w = w0 + std::min(b, n - 1);
      std::copy_n(tokens.begin() + std::size_t(w) * ctx, ctx, batch.begin() + std::size_t(b) * ctx);
    }
    const std::size_t rows = std::size_t(B) * ctx;
    dec.serve_linears(reference);
    dec.reset();
    log_softmax(lp_ref, dec.forward(batch.data(), ctx, true), rows, V);
    dec.serve_linears(candidate);
    dec.reset();
    log_softmax(lp, dec.forward(batch.data(), ctx, true), rows, V);
    for (int b = 0; b < n; b++) {
      const std::size_t w = std::size_t(w0 + b) * ctx;
      for (int t = first; t < ctx; t++) {
        const double* pr = lp_ref.data() + (std::size_t(b) * ctx + t) * V;
        const double* pc = lp.data() + (std::size_t(b) * ctx + t) * V;
        const int target = tokens[w + t + 1];
        nll_ref -= pr[target];
        nll -= pc[target];
        for (int v = 0; v < V; v++) kl += std::exp(pr[v]) * (pr[v] - pc[v]);
        same += std::max_element(pr, pr + V) - pr == std::max_element(pc, pc + V) - pc;
        q.scored++;
      }
    }
  }
  dec.serve_linears(nullptr);
  dec.reset();
  q.ppl_reference = std::exp(nll_ref / q.scored);
  q.ppl = std::exp(nll / q.scored);
  q.kl = kl / q.scored;
  q.top1_agreement = double(same) / q.scored;
  return q;
}

}  // namespace ellm

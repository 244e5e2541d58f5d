#include "infer/load_model.hpp"

#include "io/hf.hpp"
#include "train/checkpoint.hpp"
#include "util/rng.hpp"

namespace ellm {

void load_run_weights(const RunConfig& run, Decoder<float>& dec) {
  init_tensors(dec.param_layout(), dec.params(), derive_seed(run.training.seed, 0));
  if (!run.model.from_hf.empty()) {
    const hf::Config config = hf::read_config(run.model.from_hf);
    hf::check_weights(run.model.from_hf, config);
    hf::load_weights(run.model.from_hf, config, dec.param_layout(), dec.params());
  }
  if (!run.model.init_from.empty()) {
    const st::Reader ckpt = st::Reader::open(resolve_checkpoint(run.model.init_from));
    check_init_from(ckpt, run);
    load_weights(ckpt, dec.param_layout(), dec.params());
  }
  dec.weights_reloaded();
}

}  // namespace ellm

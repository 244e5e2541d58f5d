// Imports a Hugging Face model directory through src/io/hf.hpp and runs what
// tests/hf/make_tiny_models.py computed with PyTorch: the log-probabilities of the first batch,
// and the loss and gradient norm of each plain SGD step (p -= lr · grad, one process, tp = 1).
//   hf_check DIR REFERENCE.json OUT.json [--export DIR2]
// --export writes the imported model straight back (the import → export round trip).
#include <cmath>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "io/hf.hpp"
#include "model/gpt.hpp"

using namespace ellm;

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 6 && std::string(argv[4]) == "--export")) {
    std::cerr << "usage: hf_check DIR REFERENCE.json OUT.json [--export DIR2]\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const nlohmann::json ref = nlohmann::json::parse(std::ifstream(argv[2]));
  const auto batches = ref["tokens"].get<std::vector<std::vector<std::vector<int>>>>();
  const int B = int(batches[0].size()), T = int(batches[0][0].size()) - 1;
  hf::Config config = hf::read_config(dir);
  hf::check_weights(dir, config);
  ModelConfig m = config.model;
  m.seq_len = T;
  GPT<float> model(m, B);
  hf::load_weights(dir, config, model.param_layout(), model.params());
  if (argc == 6) {
    std::map<std::string, std::vector<float>> full;
    for (const TensorInfo& t : model.param_layout().tensors())
      full[t.name].assign(model.params() + t.offset, model.params() + t.offset + t.numel);
    hf::write_model(argv[5], m, config.max_positions, full);
  }
  nlohmann::json out = {{"losses", nlohmann::json::array()}, {"grad_norms", nlohmann::json::array()}};
  const float lr = ref["lr"].get<float>();
  for (std::size_t step = 0; step < batches.size(); step++) {
    std::vector<int> tokens, targets;
    for (const auto& row : batches[step]) {
      tokens.insert(tokens.end(), row.begin(), row.end() - 1);
      targets.insert(targets.end(), row.begin() + 1, row.end());
    }
    model.zero_grad();
    out["losses"].push_back(model.forward(tokens.data(), targets.data(), B));
    if (step == 0) {
      std::vector<double> logprobs(std::size_t(B) * T * m.vocab_size);
      for (std::size_t i = 0; i < logprobs.size(); i++) logprobs[i] = std::log(double(model.probabilities()[i]));
      out["logprobs"] = logprobs;
    }
    model.backward();
    double squares = 0;
    for (std::size_t i = 0; i < model.num_params(); i++) squares += double(model.grads()[i]) * model.grads()[i];
    out["grad_norms"].push_back(std::sqrt(squares));
    for (std::size_t i = 0; i < model.num_params(); i++) model.params()[i] -= lr * model.grads()[i];
  }
  std::ofstream(argv[3]) << out.dump() << "\n";
  return 0;
}

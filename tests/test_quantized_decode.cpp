// The decoder serving its linear layers from quantized copies (src/infer/linear_store.hpp): the
// layers it finds, the formats' agreement with the same model whose fp32 weights were replaced
// by the dequantized ones (fp32, fp16: only rounding; bf16 and the integer formats: plus their
// kernels' bf16 or Q8_0 activations),
// and the refusal of widths an integer block cannot hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "infer/decoder.hpp"
#include "infer/linear_store.hpp"
#include "util/rng.hpp"

namespace ellm {
namespace {

ModelConfig model(int d_model) {
  ModelConfig m;
  m.vocab_size = 48;
  m.n_layers = 2;
  m.d_model = d_model;
  m.n_heads = 2;
  m.d_ff = 64;
  m.seq_len = 16;
  m.norm = Norm::RMSNorm;
  m.activation = Activation::SwiGLU;
  m.positions = Positions::RoPE;
  m.n_kv_heads = 1;
  m.init_std = 0.1;
  m.tie_embeddings = false;  // the reference dequantizes the head: the embedding must stay as it is
  return m;
}
ModelConfig moe() {  // every layer's MLP a mixture: top-2 of 4 experts of width 32
  ModelConfig m = model(64);
  m.mlp = ChannelMixerKind::MoE;
  m.moe_experts = 4;
  m.moe_top_k = 2;
  m.moe_d_ff = 32;
  return m;
}

TEST(QuantizedDecode, FindsEveryProjectionAndTheHead) {
  Decoder<float> dec(model(64), 1);
  const std::vector<LinearShape> layers = dec.linear_layers();
  ASSERT_EQ(layers.size(), 9u);  // per layer qkv, attention out, fc, mlp out; the head
  EXPECT_EQ(layers[0].out, 64 + 2 * 32);
  EXPECT_EQ(layers[0].in, 64);
  EXPECT_EQ(layers[3].in, 64);  // the MLP's out: d_ff inputs
  EXPECT_EQ(layers.back().out, 48);
  EXPECT_EQ(dec.position(), 0);  // the finding pass leaves the caches empty
}

// A one-token pass routes to 2 of the 4 experts; the mixture announces all of them.
TEST(QuantizedDecode, FindsEveryExpertOfAMixture) {
  Decoder<float> dec(moe(), 1);
  init_tensors(dec.param_layout(), dec.params(), 5);
  const std::vector<LinearShape> layers = dec.linear_layers();
  ASSERT_EQ(layers.size(), 2u * (2 + 4 * 2) + 1);  // per layer qkv, attention out, each expert's fc and out; the head
  int expert_out = 0, square = 0;  // (64, 32): an expert's out; (64, 64): attention out or an expert's SwiGLU fc
  for (const LinearShape& l : layers) {
    expert_out += l.out == 64 && l.in == 32;
    square += l.out == 64 && l.in == 64;
  }
  EXPECT_EQ(expert_out, 2 * 4);
  EXPECT_EQ(square, 2 * (1 + 4));
}

// Max |logit difference| over max |logit| of a prefill + decode of 12 tokens: served copies
// against the arena holding their dequantized weights.
double served_vs_dequantized(quant::Format f, const ModelConfig& m = model(64)) {
  Decoder<float> dec(m, 2);
  init_tensors(dec.param_layout(), dec.params(), 5);
  const std::vector<LinearShape> layers = dec.linear_layers();
  const QuantizedLinears store(f, layers, dec.params(), dec.param_layout());
  std::vector<int> tokens(24);
  Rng rng(3);
  for (int& t : tokens) t = int(rng.below(48));
  const auto run = [&](const LinearWeights* w) {
    dec.serve_linears(w);
    dec.reset();
    std::vector<float> out;
    const float* l = dec.forward(tokens.data(), 8, true);
    out.assign(l, l + 2 * 8 * 48);
    for (int i = 8; i < 12; i++) {
      const int next[2] = {tokens[i], tokens[12 + i]};
      l = dec.forward(next, 1, false);
      out.insert(out.end(), l, l + 2 * 48);
    }
    return out;
  };
  const std::vector<float> served = run(&store);
  for (const LinearShape& l : layers) {  // the arena's weights become the dequantized copies
    quant::QMatrix::quantize(f, dec.params() + l.w, l.out, l.in).dequantize(dec.params() + l.w);
  }
  const std::vector<float> reference = run(nullptr);
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < served.size(); i++) {
    err = std::max(err, double(std::abs(served[i] - reference[i])));
    scale = std::max(scale, double(std::abs(reference[i])));
  }
  return err / scale;
}

TEST(QuantizedDecode, FloatFormatsEqualTheirDequantizedWeights) {
  EXPECT_LT(served_vs_dequantized(quant::Format::F32), 1e-5);
  EXPECT_LT(served_vs_dequantized(quant::Format::F16), 1e-5);
  // The AVX512_BF16 path (where the CPU has it) multiplies bf16 activations (2^-9 relative).
  EXPECT_LT(served_vs_dequantized(quant::Format::BF16), 1e-2);
}

TEST(QuantizedDecode, IntegerFormatsDifferOnlyByTheirQ8Activations) {
  // Q8_0 activations: a relative error of about 1/254 per block, through every layer.
  EXPECT_LT(served_vs_dequantized(quant::Format::Q8_0), 0.03);
  EXPECT_LT(served_vs_dequantized(quant::Format::Q4_0), 0.03);
}

// Every token through all 4 experts (top-4): a top-2 choice near a tie can flip under the Q8_0
// activations' perturbation, a jump no bound on rounding covers (with top-2, int4 gave 0.06;
// with all experts, under 0.03 like the dense model).
TEST(QuantizedDecode, AMixtureServesItsExpertsQuantized) {
  ModelConfig m = moe();
  m.moe_top_k = 4;
  EXPECT_LT(served_vs_dequantized(quant::Format::F16, m), 1e-5);
  EXPECT_LT(served_vs_dequantized(quant::Format::Q8_0, m), 0.03);
  EXPECT_LT(served_vs_dequantized(quant::Format::Q4_0, m), 0.03);
}

TEST(QuantizedDecode, AnIntegerFormatRefusesAWidthThatIsNotAMultipleOf32NamingTheTensor) {
  Decoder<float> dec(model(48), 1);
  const std::vector<LinearShape> layers = dec.linear_layers();
  try {
    QuantizedLinears store(quant::Format::Q4_0, layers, dec.params(), dec.param_layout());
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'h.0.attn.q.w' has 48 input columns"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(QuantizedLinears(quant::Format::BF16, layers, dec.params(), dec.param_layout()));
}

}  // namespace
}  // namespace ellm

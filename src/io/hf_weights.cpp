// Tensors between a Hugging Face checkpoint and our parameter arena. Each of our tensors (by its
// declared name) is a row-wise concatenation of pieces of Hugging Face tensors: whole tensors
// (Llama's k_proj and v_proj make our kv.w), or each head's rows of GPT-NeoX's fused
// query_key_value, whose rows are [q | k | v] per head. Hugging Face's Linear and Embedding
// weights are (out, in) and (V, C) row-major, as ours, so no tensor is transposed. The table is
// docs/HF_IMPORT.md.
#include <fstream>
#include <set>

#include "io/hf.hpp"
#include "io/safetensors.hpp"

namespace ellm::hf {
namespace fs = std::filesystem;

namespace {

struct HfTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::size_t numel() const {
    std::size_t n = 1;
    for (std::int64_t d : shape) n *= std::size_t(d);
    return n;
  }
  std::size_t row_elems() const { return numel() / std::size_t(shape[0]); }
};
struct Piece {
  std::size_t hf;          // index into NameMap::hf
  std::int64_t row, rows;  // [row, row + rows) of its first dimension
};
struct NameMap {
  std::vector<HfTensor> hf;                               // in the file's order
  std::map<std::string, std::vector<Piece>> ours;         // our name → its pieces, in order

  std::size_t add(std::string name, std::vector<std::int64_t> shape) {
    hf.push_back({std::move(name), std::move(shape)});
    return hf.size() - 1;
  }
  // Our tensor is these whole Hugging Face tensors, one after the other.
  void whole(const std::string& our, std::initializer_list<std::size_t> parts) {
    for (std::size_t i : parts) ours[our].push_back({i, 0, hf[i].shape[0]});
  }
};

// Non-parameter buffers that older checkpoints saved beside the weights (rotary frequencies,
// causal masks): recomputed here, so skipped on import.
bool is_buffer(const std::string& name) {
  for (const char* suffix : {".rotary_emb.inv_freq", ".attention.bias", ".attention.masked_bias"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
  }
  return false;
}

void llama_family(NameMap& map, const ModelConfig& m, bool qkv_bias) {
  const std::int64_t V = m.vocab_size, C = m.d_model, F = m.d_ff, hs = m.head_dim(),
                     Q = m.n_heads * hs, KV = m.kv_heads() * hs;
  map.whole("wte", {map.add("model.embed_tokens.weight", {V, C})});
  for (int l = 0; l < m.n_layers; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".", o = "h." + std::to_string(l) + ".";
    map.whole(o + "ln1.w", {map.add(p + "input_layernorm.weight", {C})});
    const std::size_t q = map.add(p + "self_attn.q_proj.weight", {Q, C});
    const std::size_t k = map.add(p + "self_attn.k_proj.weight", {KV, C});
    const std::size_t v = map.add(p + "self_attn.v_proj.weight", {KV, C});
    map.whole(o + "attn.q.w", {q});
    map.whole(o + "attn.kv.w", {k, v});
    if (qkv_bias) {
      map.whole(o + "attn.q.b", {map.add(p + "self_attn.q_proj.bias", {Q})});
      const std::size_t kb = map.add(p + "self_attn.k_proj.bias", {KV});
      map.whole(o + "attn.kv.b", {kb, map.add(p + "self_attn.v_proj.bias", {KV})});
    }
    map.whole(o + "attn.out.w", {map.add(p + "self_attn.o_proj.weight", {C, Q})});
    map.whole(o + "ln2.w", {map.add(p + "post_attention_layernorm.weight", {C})});
    const std::size_t gate = map.add(p + "mlp.gate_proj.weight", {F, C});
    map.whole(o + "mlp.fc.w", {gate, map.add(p + "mlp.up_proj.weight", {F, C})});  // [gate | up]
    map.whole(o + "mlp.out.w", {map.add(p + "mlp.down_proj.weight", {C, F})});
  }
  map.whole("lnf.w", {map.add("model.norm.weight", {C})});
  if (!m.tie_embeddings) map.whole("lm_head", {map.add("lm_head.weight", {V, C})});
}

void neox(NameMap& map, const ModelConfig& m) {
  const std::int64_t V = m.vocab_size, C = m.d_model, F = m.d_ff, H = m.n_heads, hs = m.head_dim();
  map.whole("wte", {map.add("gpt_neox.embed_in.weight", {V, C})});
  const auto norm = [&](const std::string& ours, const std::string& theirs) {
    map.whole(ours + ".w", {map.add(theirs + ".weight", {C})});
    map.whole(ours + ".b", {map.add(theirs + ".bias", {C})});
  };
  for (int l = 0; l < m.n_layers; l++) {
    const std::string p = "gpt_neox.layers." + std::to_string(l) + ".", o = "h." + std::to_string(l) + ".";
    norm(o + "ln1", p + "input_layernorm");
    norm(o + "ln2", p + "post_attention_layernorm");
    // Fused rows per head h: [q_h | k_h | v_h]; ours: all q heads, then all k, then all v.
    for (const char* kind : {"weight", "bias"}) {
      const bool w = kind[0] == 'w';
      const std::size_t qkv = map.add(p + "attention.query_key_value." + kind,
                                      w ? std::vector<std::int64_t>{3 * C, C} : std::vector<std::int64_t>{3 * C});
      const std::string suffix = w ? ".w" : ".b";
      for (std::int64_t h = 0; h < H; h++) map.ours[o + "attn.q" + suffix].push_back({qkv, h * 3 * hs, hs});
      for (int part : {1, 2})
        for (std::int64_t h = 0; h < H; h++)
          map.ours[o + "attn.kv" + suffix].push_back({qkv, h * 3 * hs + part * hs, hs});
    }
    map.whole(o + "attn.out.w", {map.add(p + "attention.dense.weight", {C, C})});
    map.whole(o + "attn.out.b", {map.add(p + "attention.dense.bias", {C})});
    map.whole(o + "mlp.fc.w", {map.add(p + "mlp.dense_h_to_4h.weight", {F, C})});
    map.whole(o + "mlp.fc.b", {map.add(p + "mlp.dense_h_to_4h.bias", {F})});
    map.whole(o + "mlp.out.w", {map.add(p + "mlp.dense_4h_to_h.weight", {C, F})});
    map.whole(o + "mlp.out.b", {map.add(p + "mlp.dense_4h_to_h.bias", {C})});
  }
  norm("lnf", "gpt_neox.final_layer_norm");
  if (!m.tie_embeddings) map.whole("lm_head", {map.add("embed_out.weight", {V, C})});
}

NameMap name_map(Arch arch, const ModelConfig& m) {
  NameMap map;
  if (arch == Arch::GPTNeoX) {
    neox(map, m);
  } else {
    llama_family(map, m, arch == Arch::Qwen2);
  }
  return map;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

st::DType dtype_of(const std::string& torch_dtype) {
  return torch_dtype == "bfloat16" ? st::DType::BF16 : torch_dtype == "float16" ? st::DType::F16 : st::DType::F32;
}

st::Reader open_weights(const fs::path& dir) {
  try {
    return st::Reader::open(dir);
  } catch (const st::FileError& e) {
    throw Error(e.file(), e.tensor().empty() ? "" : "tensor '" + e.tensor() + "'", e.message());
  }
}

// The pieces of `our` tensor (its full, tp = 1, shape) as the map gives them; a name the map
// lacks is a declaration the mapping was not updated for.
const std::vector<Piece>& pieces_of(const NameMap& map, const TensorInfo& t) {
  const auto it = map.ours.find(t.name);
  if (it == map.ours.end()) throw std::logic_error("hf: no Hugging Face tensor for " + t.name);
  std::size_t n = 0;
  for (const Piece& p : it->second) n += std::size_t(p.rows) * map.hf[p.hf].row_elems();
  if (n != t.full_numel) throw std::logic_error("hf: the pieces of " + t.name + " do not fill it");
  return it->second;
}

}  // namespace

void check_weights(const fs::path& dir, const Config& config) {
  const st::Reader reader = open_weights(dir);
  const NameMap map = name_map(config.arch, config.model);
  const std::string arch = arch_name(config.arch);
  std::set<std::string> expected;
  for (const HfTensor& want : map.hf) {
    expected.insert(want.name);
    const st::TensorView* t = reader.find(want.name);
    const std::string where = "tensor '" + want.name + "'";
    if (t == nullptr)
      throw Error(reader.path().string(), where,
                  "missing; " + arch + " with this config.json needs it, shape " + shape_text(want.shape));
    if (t->shape != want.shape)
      throw Error(t->file.string(), where,
                  "has shape " + shape_text(t->shape) + "; config.json (" + arch + ") needs " +
                      shape_text(want.shape));
    if (!config.torch_dtype.empty() && t->dtype != dtype_of(config.torch_dtype))
      throw Error(t->file.string(), where,
                  std::string("has dtype ") + st::dtype_name(t->dtype) + "; config.json's torch_dtype \"" +
                      config.torch_dtype + "\" needs " + st::dtype_name(dtype_of(config.torch_dtype)));
  }
  for (const std::string& name : reader.names()) {
    if (expected.count(name) == 0 && !is_buffer(name))
      throw Error(reader.at(name).file.string(), "tensor '" + name + "'",
                  "unexpected: not a tensor of " + arch + " with this config.json" +
                      (config.model.tie_embeddings ? " (tie_word_embeddings is true)" : ""));
  }
}

template <class T>
void load_weights(const fs::path& dir, const Config& config, const ArenaLayout& params, T* arena) {
  const st::Reader reader = open_weights(dir);
  const NameMap map = name_map(config.arch, config.model);
  std::vector<T> full, hf;
  std::size_t converted = map.hf.size();  // which Hugging Face tensor `hf` holds
  for (const TensorInfo& t : params.tensors()) {
    if (t.adapter) continue;  // a fine-tuning adapter keeps its declared start (init_adapters)
    full.assign(t.full_numel, T(0));
    std::size_t at = 0;
    for (const Piece& p : pieces_of(map, t)) {
      if (converted != p.hf) {
        const st::TensorView& view = reader.at(map.hf[p.hf].name);
        hf.resize(view.numel());
        st::read_as(view, hf.data());
        converted = p.hf;
      }
      const std::size_t row = map.hf[p.hf].row_elems(), n = std::size_t(p.rows) * row;
      std::copy_n(hf.begin() + std::size_t(p.row) * row, n, full.begin() + at);
      at += n;
    }
    extract_shard(full.data(), t, arena + t.offset);
  }
}
template void load_weights<float>(const fs::path&, const Config&, const ArenaLayout&, float*);
template void load_weights<double>(const fs::path&, const Config&, const ArenaLayout&, double*);

std::vector<std::string> modules_of(const ModelConfig& m, const std::vector<RowRange>& ranges) {
  const Arch arch = export_arch(m);
  const NameMap map = name_map(arch, m);
  std::vector<std::string> modules;
  for (const RowRange& r : ranges) {
    const auto it = map.ours.find(r.tensor);
    if (it == map.ours.end()) throw std::logic_error("hf: no Hugging Face tensor for " + r.tensor);
    std::int64_t at = 0;  // the piece's first row in our tensor
    std::string found;
    for (const Piece& p : it->second) {
      const HfTensor& hf = map.hf[p.hf];
      if (at == r.row0 && p.rows == r.rows && p.row == 0 && p.rows == hf.shape[0])
        found = hf.name.substr(0, hf.name.size() - std::string(".weight").size());
      at += p.rows;
    }
    if (found.empty())
      throw Error("", "", "rows " + std::to_string(r.row0) + "…" + std::to_string(r.row0 + r.rows - 1) + " of " +
                              r.tensor + " are not the whole weight of one " + arch_name(arch) +
                              " module (GPT-NeoX fuses q, k and v into query_key_value, per head)");
    modules.push_back(found);
  }
  return modules;
}

std::vector<std::string> linear_module_names(Arch arch) {
  if (arch == Arch::GPTNeoX) return {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"};
  return {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
}

void write_model(const fs::path& dir, const ModelConfig& m, int max_positions,
                 const std::map<std::string, std::vector<float>>& full) {
  const Arch arch = export_arch(m);
  const NameMap map = name_map(arch, m);
  std::vector<std::vector<float>> data(map.hf.size());
  for (std::size_t i = 0; i < map.hf.size(); i++) data[i].assign(map.hf[i].numel(), 0.0f);
  for (const auto& [name, pieces] : map.ours) {
    const auto src = full.find(name);
    if (src == full.end()) throw std::logic_error("hf: the model has no tensor " + name);
    std::size_t at = 0;
    for (const Piece& p : pieces) {
      const std::size_t row = map.hf[p.hf].row_elems(), n = std::size_t(p.rows) * row;
      std::copy_n(src->second.begin() + at, n, data[p.hf].begin() + std::size_t(p.row) * row);
      at += n;
    }
  }
  std::vector<st::TensorOut> out;
  for (std::size_t i = 0; i < map.hf.size(); i++)
    out.push_back({map.hf[i].name, st::DType::F32, map.hf[i].shape, data[i].data()});
  fs::create_directories(dir);
  // Hugging Face's loader wants format "pt" in the metadata.
  st::write(dir / "model.safetensors", out, {{"format", "pt"}});
  const fs::path config = dir / "config.json", tmp = dir / "config.json.tmp";
  {
    std::ofstream f(tmp);
    f << config_json(m, arch, max_positions).dump(2) << "\n";
    if (!f.flush()) throw Error(tmp.string(), "", "cannot write");
  }
  fs::rename(tmp, config);
}

}  // namespace ellm::hf

#pragma once
// The DiT backbone with adaLN-Zero conditioning (Peebles & Xie 2023, "Scalable Diffusion Models
// with Transformers"). Module names equal the reference checkpoint keys, so a reference DiT
// state dict saved as safetensors loads unchanged:
//   pos_embed, x_embedder.proj, t_embedder.mlp.{0,2}, y_embedder.embedding_table,
//   blocks.{i}.attn.{qkv,proj}, blocks.{i}.mlp.{fc1,fc2}, blocks.{i}.adaLN_modulation.1,
//   final_layer.{linear,adaLN_modulation.1}
#include <dit/linear.h>
#include <dit/safetensors.h>
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dit {

// Flow-matching models see t in [0, 1] scaled by this factor (the reference DiT embeds integer
// DDPM steps 0..999, so its frequency table is tuned for this range).
constexpr double kTimestepScale = 1000.0;

// Sanity limits for configs (far beyond any real model; they keep the shape arithmetic of a
// config inferred from a damaged file from overflowing): every size, and the parameter count.
constexpr int64_t kMaxConfigDim = int64_t{1} << 24;
constexpr int64_t kMaxDepth = 4096;
constexpr int64_t kMaxParameters = int64_t{1} << 40;

struct DiTConfig {
  int64_t input_size = 32;   // image side in pixels (or latent cells); square
  int64_t patch_size = 2;
  int64_t in_channels = 4;
  int64_t hidden_size = 384;
  int64_t depth = 12;
  int64_t num_heads = 6;
  double mlp_ratio = 4.0;
  int64_t num_classes = 1000;  // 0: unconditional (no y_embedder)
  bool learn_sigma = true;     // output 2*C channels (eps/velocity + variance), as the reference
  // Few-step models: a second timestep embedder `dt_embedder` for the step size d, added to the
  // condition (Frans et al. 2024, "One Step Diffusion via Shortcut Models", sec. 3). Files
  // without dt_embedder tensors load as plain flow models.
  bool step_conditioning = false;
  // What the network predicts (the model's kind; it selects the samplers, dit/sampler.h):
  //   "flow"    dit-engine's flow matching (DESIGN.md time convention: t = 0 data, t = 1 noise,
  //             v = eps - x0), t scaled by kTimestepScale;
  //   "epsilon" the published facebookresearch/DiT checkpoints: the noise of a DDPM with the
  //             1000-step linear beta schedule, at integer timesteps 0..999 (999 = noise), and
  //             with learn_sigma the learned-range variance in the other C channels: sampled by
  //             "ddpm" and "ddim" (samplers/ddpm.cpp);
  //   "sit"     SiT checkpoints (Ma et al. 2024): the velocity of the linear interpolant
  //             x_s = s x0 + (1 - s) eps in SiT's time s = 1 - t (s = 0 noise, s = 1 data, not
  //             scaled), so v = x0 - eps: our velocity is -model(x, 1 - t) (docs/official-checkpoints.md).
  std::string prediction = "flow";

  int64_t out_channels() const { return learn_sigma ? 2 * in_channels : in_channels; }
  int64_t grid_size() const { return input_size / patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  int64_t mlp_hidden() const { return static_cast<int64_t>(hidden_size * mlp_ratio); }
  int64_t head_dim() const { return hidden_size / num_heads; }
  // Null class used for classifier-free guidance (the extra embedding row).
  int64_t null_class() const { return num_classes; }

  // Throws dit::Error naming the field when the combination is invalid.
  void validate() const;
  // Parameters and buffers of the DiT it describes (what a model file must hold): their
  // count, and every state-dict name with its shape (call after validate()).
  int64_t parameter_count() const;
  std::vector<std::pair<std::string, std::vector<int64_t>>> weight_shapes() const;
  std::string describe() const;  // one line, e.g. "DiT hidden 384, depth 12, heads 6, ..."
  Metadata to_metadata() const;  // "dit.<field>" -> value, stored in safetensors headers

  // Reference presets "DiT-S/2" ... "DiT-XL/8" (also accepted without "DiT-"), with the
  // reference defaults (input 32, 4 channels, 1000 classes, learn_sigma), and small ones:
  // "tiny" (tests), "fmnist" (the bundled Fashion-MNIST model).
  static DiTConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();
};

// Infers the config from tensor shapes (and the "dit.num_heads" metadata entry when present:
// heads are not visible in shapes; without it the reference width->heads table is used, then
// head dim 64). `shape_of` returns the shape of a tensor or nullopt when absent. `source`
// names the file in error messages.
using ShapeLookup = std::function<std::optional<std::vector<int64_t>>(const std::string&)>;
DiTConfig infer_config(const ShapeLookup& shape_of, const Metadata& metadata,
                       const std::string& source, const std::string& prefix = "");
DiTConfig infer_config(const SafeTensorsFile& file, const std::string& prefix = "");

// ---- what every network is to the trainer and the sampling path ------------------------------

// The conditions of a batch besides the generated state x and the time: any may be undefined.
// Images use `labels` only; token sets (docking, proteins, crystals) add per-token features, a
// padding mask and optional context tokens (docs/architecture.md, "Token sets").
struct FlowInputs {
  torch::Tensor labels;        // [B] int64 class ids (the net's null class: unconditional)
  torch::Tensor features;      // [B, N, F] fixed per-token features
  torch::Tensor mask;          // [B, N] bool, true = real token (undefined: all real)
  torch::Tensor context;       // [B, M, Fc] context tokens (conditioning, not generated)
  torch::Tensor context_mask;  // [B, M] bool
  torch::Tensor cond;          // [B, K] continuous conditioning vector (length, composition...)
  torch::Tensor rows;          // [B] int64: each row's index in the caller's request list (set by
                               // dit::generate; the network ignores it; hooks use it to find
                               // their requests in a chunk or CFG batch)

  // Rows [first, first + n), rows `index` [B'], the batch repeated `times` (CFG's 2B batch),
  // and the row-wise concatenation of two inputs with the same fields.
  FlowInputs narrow(int64_t first, int64_t n) const;
  FlowInputs index_select(const torch::Tensor& index) const;
  FlowInputs repeat(int64_t times) const;
  static FlowInputs cat(const FlowInputs& a, const FlowInputs& b);
  // Every field on `device`; floating-point fields (features, context, cond) also in `floating`
  // when given (a bf16 / fp16 model on a GPU); labels, masks and rows keep their dtypes.
  FlowInputs to(const torch::Device& device,
                std::optional<torch::ScalarType> floating = std::nullopt) const;
  // The batch size (0 when every field is undefined).
  int64_t batch_size() const;
};

class BlockStackInference;  // dit/inference.h

// A flow network: u(x, t, d | inputs), t and d in [0, 1] ([B] each). d undefined gives the
// velocity v(x, t) (DESIGN.md time convention: t = 0 data, v = eps - x0). The output has x's
// shape; padded tokens (mask false) get zero. DiT (images) and TokenDiT (token sets) are the two
// front-ends of the one block stack; FlowMatchingTrainer and sample_flow see only this.
struct FlowNetImpl : torch::nn::Module {
  virtual torch::Tensor flow(const torch::Tensor& x, const torch::Tensor& t,
                             const FlowInputs& inputs, const torch::Tensor& d = {}) = 0;
  // The inference path for sampling (grad mode off; may reuse buffers): the same function.
  virtual std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&,
                                      const FlowInputs&, const torch::Tensor&)>
  inference();
  // Precision of the linear layers on that path (dit/linear.h, dit/inference.h); unset: the
  // default ($DIT_LINEAR_PRECISION, else fp32). The sampling commands set it from --precision.
  std::optional<kernels::LinearPrecision> inference_precision;
  virtual int64_t num_classes() const = 0;  // 0: no labels; the null class is num_classes()
  virtual bool step_conditioned() const = 0;
  // The model's kind (DiTConfig::prediction): "flow" (every network dit-engine trains),
  // "epsilon" (published DiT checkpoints: inference() then returns the raw output, epsilon and
  // variance channels, at t = timestep / 1000) or "sit" (inference() returns our velocity).
  virtual std::string prediction() const { return "flow"; }
  virtual std::string describe() const = 0;  // one line: the architecture
  virtual Metadata metadata() const = 0;     // the architecture, for the file's header
  // A new network of the same architecture (initialised weights): EMA copies, snapshots.
  virtual std::shared_ptr<FlowNetImpl> fresh() const = 0;
};
using FlowNet = std::shared_ptr<FlowNetImpl>;

// ---- modules ----------------------------------------------------------------------------------

struct TimestepEmbedderImpl : torch::nn::Module {
  explicit TimestepEmbedderImpl(int64_t hidden, int64_t frequency_size = 256);
  // t: [B] (any real values) -> [B, D]
  torch::Tensor forward(const torch::Tensor& t);
  int64_t frequency_size;
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(TimestepEmbedder);

// Sinusoidal embedding of the reference DiT: [cos(t f_i), sin(t f_i)], f_i = 10000^(-i/half).
torch::Tensor timestep_frequencies(const torch::Tensor& t, int64_t dim, double max_period = 10000);

// 2D sin-cos position embedding [grid*grid, dim] (MAE / reference DiT layout).
torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid);

struct PatchEmbedImpl : torch::nn::Module {
  PatchEmbedImpl(int64_t in_channels, int64_t hidden, int64_t patch);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> [B, N, D]
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

struct LabelEmbedderImpl : torch::nn::Module {
  // num_classes + 1 rows: the last one is the null class of classifier-free guidance.
  LabelEmbedderImpl(int64_t num_classes, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& y);  // [B] -> [B, D]
  torch::nn::Embedding embedding_table{nullptr};
};
TORCH_MODULE(LabelEmbedder);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t hidden, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x,
                        const std::optional<torch::Tensor>& key_mask);  // [B,N,D] -> [B,N,D]
  int64_t heads;
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t hidden, int64_t mlp_hidden);
  torch::Tensor forward(const torch::Tensor& x);  // fc2(gelu_tanh(fc1(x)))
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct DiTBlockImpl : torch::nn::Module {
  DiTBlockImpl(int64_t hidden, int64_t heads, int64_t mlp_hidden);
  // x: [B, N, D], c: [B, D], key_mask: optional [B, N] (true = real token)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c,
                        const std::optional<torch::Tensor>& key_mask = std::nullopt);
  Attention attn{nullptr};
  Mlp mlp{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};  // SiLU, Linear(D, 6D)
};
TORCH_MODULE(DiTBlock);

struct FinalLayerImpl : torch::nn::Module {
  FinalLayerImpl(int64_t hidden, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& c);  // [B,N,D] -> [B,N,out]
  torch::nn::Linear linear{nullptr};
  torch::nn::Sequential adaLN_modulation{nullptr};
};
TORCH_MODULE(FinalLayer);

struct DiTImpl : FlowNetImpl {
  // initialize = false: skip the DiT initialisation (for a model whose weights are loaded next:
  // load_dit; saves ~0.1 s of random draws at DiT-S/2 in every command's start-up).
  explicit DiTImpl(const DiTConfig& config, bool initialize = true);

  // FlowNetImpl: x [B, C, H, W], inputs.labels [B] (required when num_classes > 0); returns the
  // first in_channels output channels (the variance channels of learn_sigma models dropped).
  torch::Tensor flow(const torch::Tensor& x, const torch::Tensor& t, const FlowInputs& inputs,
                     const torch::Tensor& d = {}) override;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const FlowInputs&,
                              const torch::Tensor&)>
  inference() override;  // DiTInference (dit/inference.h), bf16 linears per DIT_LINEAR_PRECISION
  int64_t num_classes() const override { return config_.num_classes; }
  bool step_conditioned() const override { return config_.step_conditioning; }
  std::string prediction() const override { return config_.prediction; }
  std::string describe() const override { return config_.describe(); }
  Metadata metadata() const override { return config_.to_metadata(); }
  std::shared_ptr<FlowNetImpl> fresh() const override;

  // Image path. x: [B, C, H, W], t: [B] (timestep units, see kTimestepScale), y: [B] class ids
  // (null_class() for unconditional; ignored when num_classes == 0) -> [B, out_channels, H, W].
  // d: [B] step sizes in timestep units for step-conditioned models (undefined: 0, the
  // instantaneous velocity); must be undefined for other models.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                        const torch::Tensor& d = {});

  // Pieces, for domains that bring their own tokens (see docs/architecture.md):
  torch::Tensor condition(const torch::Tensor& t, const torch::Tensor& y,
                          const torch::Tensor& d = {});  // -> c [B, D]
  torch::Tensor embed_patches(const torch::Tensor& x);                     // -> [B, N, D]
  torch::Tensor run_blocks(torch::Tensor tokens, const torch::Tensor& c,
                           const std::optional<torch::Tensor>& key_mask = std::nullopt);
  torch::Tensor unpatchify(const torch::Tensor& x);  // [B, N, p*p*C] -> [B, C, H, W]

  // Reference initialisation: xavier-uniform linears, zero biases, normal(0.02) label table and
  // t MLP, patch conv like a linear, and zero adaLN modulation and final layer (adaLN-Zero).
  // dt_embedder: first layer normal(0.02), last layer zero, so a step embedder added to a
  // trained model leaves its output unchanged.
  void initialize_weights();

  const DiTConfig& config() const { return config_; }

  // Sub-modules, registered under the reference names.
  PatchEmbed x_embedder{nullptr};
  TimestepEmbedder t_embedder{nullptr};
  TimestepEmbedder dt_embedder{nullptr};  // null unless config.step_conditioning
  LabelEmbedder y_embedder{nullptr};  // null when num_classes == 0
  torch::nn::ModuleList blocks{nullptr};
  FinalLayer final_layer{nullptr};
  torch::Tensor pos_embed;  // buffer [1, N, D], fixed sin-cos

 private:
  DiTConfig config_;
};
TORCH_MODULE(DiT);

// ---- token sets ------------------------------------------------------------------------------

// The DiT over a token set (atoms, residues): per-token features and the generated state enter
// one linear embedder (`x_embedder`, input [features, state]); context tokens (pocket atoms...)
// their own (`context_embedder`) and join the sequence (joint attention, as SD3's MM-DiT), with
// a key-padding mask over both; labels (`y_embedder`) and a continuous condition vector
// (`cond_embedder`) add to the time embedding that drives adaLN-Zero; the same DiTBlock and
// FinalLayer as images read the generated tokens out. No position embedding: a token set has no
// order beyond what its features say (proteins put the residue index there).
struct TokenDiTConfig {
  int64_t state_dim = 3;         // Cx: generated numbers per token (xyz coordinates: 3)
  int64_t token_features = 0;    // F
  int64_t context_features = 0;  // Fc (0: no context tokens)
  int64_t cond_features = 0;     // K (0: no condition vector)
  int64_t num_classes = 0;       // 0: no labels
  int64_t hidden_size = 192, depth = 6, num_heads = 6;
  double mlp_ratio = 4.0;
  bool step_conditioning = false;
  // Periodic state (crystals' fractional coordinates on the unit circle): the token embedding
  // also sees sin(2 pi k x) and cos(2 pi k x) of every state number for k = 1..K, so that it is
  // continuous across the wrap at +-0.5. 0: plain state (K = 0 adds nothing).
  int64_t periodic_frequencies = 0;
  // Chains (protein backbones: tokens in sequence order): the token embedding also sees, for each
  // offset k in -K..-1, 1..K, the displacement x[i+k] - x[i] of the current state, its length and
  // whether token i+k exists (inside the chain and not padding): 5 numbers per offset for a 3-D
  // state. Local geometry (virtual bonds, angles, dihedrals) becomes a function of one token's
  // input instead of something attention must reconstruct from absolute positions. 0: none.
  int64_t chain_neighbours = 0;
  // Periodic pairs (crystals' atoms on the torus): the first `global_tokens` tokens are global
  // (the lattice); every other token i also sees, averaged over the other real tokens j,
  // [sin, cos](2 pi k (x_j - x_i)) for k = 1..periodic_pairs and every state number, times a
  // learned projection of j's features to `pair_channels` numbers (pair_embedder), and no
  // longer sees its own absolute state: its inputs depend on differences only, so the network
  // is exactly invariant to translating every token by the same vector (the cell's origin).
  // 0: none. Needs token_features > 0.
  int64_t periodic_pairs = 0, pair_channels = 8, global_tokens = 0;

  void validate() const;  // throws dit::Error naming the field
  std::string describe() const;
  Metadata to_metadata() const;  // "token.<field>", and dit.kind = "token"
  // From a file's metadata; `source` names the file in errors.
  static TokenDiTConfig from_metadata(const Metadata& metadata, const std::string& source);
};

struct TokenDiTImpl : FlowNetImpl {
  explicit TokenDiTImpl(const TokenDiTConfig& config);
  // x [B, N, state_dim], t and d [B] in [0, 1]; inputs.features [B, N, F] (F > 0), mask [B, N]
  // (optional), context [B, M, Fc] and context_mask (when Fc > 0), labels, cond [B, K].
  // Returns [B, N, state_dim], zero at padded tokens.
  torch::Tensor flow(const torch::Tensor& x, const torch::Tensor& t, const FlowInputs& inputs,
                     const torch::Tensor& d = {}) override;
  // With grad mode off: the blocks through BlockStackInference (dit/inference.h: reused
  // buffers, fused kernels, linears in inference_precision); otherwise flow().
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const FlowInputs&,
                              const torch::Tensor&)>
  inference() override;
  int64_t num_classes() const override { return config_.num_classes; }
  bool step_conditioned() const override { return config_.step_conditioning; }
  std::string describe() const override { return config_.describe(); }
  Metadata metadata() const override { return config_.to_metadata(); }
  std::shared_ptr<FlowNetImpl> fresh() const override;
  const TokenDiTConfig& config() const { return config_; }

  torch::nn::Linear x_embedder{nullptr}, context_embedder{nullptr}, cond_embedder{nullptr},
      pair_embedder{nullptr};
  TimestepEmbedder t_embedder{nullptr}, dt_embedder{nullptr};
  LabelEmbedder y_embedder{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  FinalLayer final_layer{nullptr};

 private:
  // flow() with the blocks run by `stack` (null: each block's forward, with autograd).
  torch::Tensor flow_with(const torch::Tensor& x, const torch::Tensor& t, const FlowInputs& inputs,
                         const torch::Tensor& d, BlockStackInference* stack);
  TokenDiTConfig config_;
};
TORCH_MODULE(TokenDiT);

// The DiT initialisation shared by every front-end (one model setup): xavier-uniform linears
// with zero bias, normal(0.02) label table and timestep MLP, the step embedder's output layer
// zero, and adaLN-Zero (every block's modulation and the final layer zero). `front_end` runs
// after the linears, for embedders that are not linear layers (the DiT's patch convolution).
void initialize_dit_weights(torch::nn::Module& net, TimestepEmbedder& t_embedder,
                            TimestepEmbedder& dt_embedder, LabelEmbedder& y_embedder,
                            torch::nn::ModuleList& blocks, FinalLayer& final_layer,
                            const std::function<void()>& front_end = {});

// Tensors of a module keyed by their reference names (parameters and buffers).
TensorMap state_dict(const torch::nn::Module& module);
// Copies `weights` into the module (converting dtype). Every parameter and buffer must be
// present with the right shape and no extra keys may remain; errors name `source` and the key.
void load_state_dict(torch::nn::Module& module, const TensorMap& weights,
                     const std::string& source);

// Prefix of the weights to use in a file: "ema." for training checkpoints, "" for model files.
std::string weights_prefix(const SafeTensorsFile& file);

// Loads a model file or a training checkpoint (its EMA weights) and infers the config.
DiT load_dit(const std::string& path, torch::Dtype dtype = torch::kFloat32);

// What a file does not say about its model. The published .pt checkpoints (torch.save state
// dicts, dit/torch_pt.h) store neither the head count nor the kind. Heads: `heads` when given,
// else the file's "dit.num_heads", else the reference rule (head size 64 for DiT-S, B and L;
// 16 heads for XL). Kind: `prediction` when given, else the file's "dit.prediction", else for a
// .pt file its name (SiT-*.pt: "sit"; any other: "epsilon", the DiT release), else "flow".
struct DiTLoadOptions {
  int64_t heads = 0;       // 0: from the file, else the reference rule
  std::string prediction;  // "": from the file or its name
  torch::Dtype dtype = torch::kFloat32;
};
// load_dit for safetensors model files, training checkpoints and torch.save .pt files (state
// dicts, or training checkpoints with "ema" / "model"), with the config inferred from shapes.
DiT load_dit(const std::string& path, const DiTLoadOptions& options);
// A step-conditioned copy of a flow model (same weights, a fresh dt_embedder whose output is
// zero): the starting point of few-step training. `model` must not be step-conditioned.
DiT with_step_conditioning(DiT& model);

// Any network file: a TokenDiT when its metadata says dit.kind = "token", else a DiT (config
// from shapes, as load_dit). Training checkpoints give their EMA weights.
FlowNet load_flow_net(const std::string& path);
// Starts `net` from the weights of a network file (a warm start when a config gains inputs):
// every parameter whose name and shape match is copied; a 2-D weight that gained input columns
// (same rows, more columns) gets the file's columns first and zeros in the new ones, so the new
// inputs start with no effect. Throws dit::Error naming the file when a parameter is missing
// there or its shape cannot be matched. Returns a one-line summary (parameters copied, widened).
std::string initialize_from(FlowNetImpl& net, const std::string& path);
// Writes a network's weights (float32) with its metadata() and `extra`, atomically.
void save_flow_net(const std::string& path, const FlowNetImpl& net, Metadata extra = {});

// Writes the weights (cast to `dtype`) with the config in the metadata.
void save_dit(const std::string& path, DiT& model, torch::Dtype dtype = torch::kFloat32,
              Metadata extra = {});

}  // namespace dit

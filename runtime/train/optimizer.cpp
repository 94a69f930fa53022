#include "runtime/train/optimizer.h"

#include <cmath>
#include <optional>
#include <sstream>
#include <utility>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// How Adam applies weight decay: as an L2 term in the gradient (Adam) or to the parameters (AdamW).
enum class WeightDecayKind { L2, Decoupled };

// Hyper-parameters of torch.optim.SGD with dampening 0.
struct SgdOptions {
  double lr = 0;
  double momentum = 0;
  MomentumKind momentum_kind = MomentumKind::Classic;
  double weight_decay = 0;
};

// Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay, as torch.optim.SGD.
class Sgd final : public Optimizer {
 public:
  Sgd(const SgdOptions& options, OptimizerSetup setup, Backend& backend)
      : Optimizer(std::move(setup), backend), options_(options) {
    if (options_.momentum > 0) momentum_ = Tensor({num_parameters()}, backend);
  }

  const char* name() const override { return "sgd"; }

  std::string describe() const override {
    std::string text = "sgd (lr " + format_number(options_.lr);
    if (options_.momentum > 0) {
      text += ", momentum " + format_number(options_.momentum);
      if (options_.momentum_kind == MomentumKind::Nesterov) text += ", nesterov";
    }
    if (options_.weight_decay > 0) {
      text += ", weight_decay " + format_number(options_.weight_decay) + decay_exclusions_text(options_.weight_decay);
    }
    return text + common_text() + ")";
  }

  void step(Tensor& params, const Tensor& grads, float lr) override {
    check_step(params, grads, lr);
    for (const UpdateRange& range : ranges()) {
      SgdUpdate u;
      u.params = params.data() + range.begin;
      u.grads = grads.data() + range.begin;
      u.momentum = momentum_.empty() ? nullptr : momentum_.data() + range.begin;
      u.n = range.end - range.begin;
      u.lr = lr;
      u.mu = static_cast<float>(options_.momentum);
      u.weight_decay = static_cast<float>(range.weight_decay);
      u.momentum_kind = options_.momentum_kind;
      backend_.sgd_update(u);
    }
    ++steps_;
  }

  std::vector<std::pair<std::string, Tensor*>> state() override {
    if (momentum_.empty()) return {};
    return {{"momentum", &momentum_}};
  }

 private:
  SgdOptions options_;
  Tensor momentum_;  // (num_parameters): torch's momentum_buffer; empty without momentum
};

// Hyper-parameters of torch.optim.Adam (amsgrad off) and, with decoupled decay, torch.optim.AdamW.
struct AdamOptions {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  WeightDecayKind weight_decay_kind = WeightDecayKind::L2;
};

// Adam with bias correction, as torch.optim.Adam; AdamW when weight decay is decoupled.
class Adam final : public Optimizer {
 public:
  Adam(const AdamOptions& options, OptimizerSetup setup, Backend& backend)
      : Optimizer(std::move(setup), backend),
        options_(options),
        exp_avg_({num_parameters()}, backend),
        exp_avg_sq_({num_parameters()}, backend) {}

  const char* name() const override {
    return options_.weight_decay_kind == WeightDecayKind::Decoupled ? "adamw" : "adam";
  }

  std::string describe() const override {
    std::string text = std::string(name()) + " (lr " + format_number(options_.lr) + ", betas " +
                       format_number(options_.beta1) + "/" + format_number(options_.beta2) + ", eps " +
                       format_number(options_.eps);
    if (options_.weight_decay > 0) {
      text +=
          options_.weight_decay_kind == WeightDecayKind::Decoupled ? ", decoupled weight_decay " : ", weight_decay ";
      text += format_number(options_.weight_decay) + decay_exclusions_text(options_.weight_decay);
    }
    return text + common_text() + ")";
  }

  void step(Tensor& params, const Tensor& grads, float lr) override {
    check_step(params, grads, lr);
    for (const UpdateRange& range : ranges()) {
      AdamUpdate u = scalars(lr, range.weight_decay);
      u.params = params.data() + range.begin;
      u.grads = grads.data() + range.begin;
      u.exp_avg = exp_avg_.data() + range.begin;
      u.exp_avg_sq = exp_avg_sq_.data() + range.begin;
      u.n = range.end - range.begin;
      backend_.adam_update(u);
    }
    ++steps_;
  }

  std::vector<std::pair<std::string, Tensor*>> state() override {
    return {{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}};
  }

 private:
  // The per-step scalars of the next update of a range with `weight_decay`, worked out in double
  // as torch does on the host.
  AdamUpdate scalars(float lr, double weight_decay) const {
    const double t = static_cast<double>(steps_ + 1);
    const double bias_correction1 = 1.0 - std::pow(options_.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(options_.beta2, t);
    const bool decoupled = options_.weight_decay_kind == WeightDecayKind::Decoupled;
    AdamUpdate u;
    u.step_size = static_cast<float>(lr / bias_correction1);
    u.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
    u.l2 = decoupled ? 0.0f : static_cast<float>(weight_decay);
    u.shrink = decoupled ? static_cast<float>(1.0 - lr * weight_decay) : 1.0f;
    u.beta1 = static_cast<float>(options_.beta1);
    u.beta2 = static_cast<float>(options_.beta2);
    u.one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
    u.one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
    u.eps = static_cast<float>(options_.eps);
    return u;
  }

  AdamOptions options_;
  Tensor exp_avg_;     // (num_parameters): first moment m
  Tensor exp_avg_sq_;  // (num_parameters): second moment v
};

bool non_negative(double x) { return x >= 0; }
bool positive(double x) { return x > 0; }
bool unit_interval(double x) { return x >= 0 && x < 1; }

// The settings either type reads after its own weight_decay, and the update plan that follows.
OptimizerSetup read_setup(ConfigMap& config, double lr, double weight_decay, const std::vector<ParamEntry>& entries,
                          size_t num_parameters) {
  OptimizerSetup setup;
  setup.base_lr = lr;
  setup.num_parameters = num_parameters;
  setup.exclusions = read_decay_exclusions(config);
  if (config.has("clip_grad_norm")) {
    setup.max_grad_norm = config.get_double_checked("clip_grad_norm", std::nullopt, positive, "must be > 0");
  }
  setup.ranges = plan_update_ranges(entries, num_parameters, weight_decay, setup.exclusions);
  for (const ParamEntry& entry : entries) {
    if (entry.use == ParamUse::Frozen) setup.frozen_parameters += num_elements(entry.shape);
  }
  return setup;
}

std::unique_ptr<Optimizer> make_sgd(ConfigMap& config, double lr, const std::vector<ParamEntry>& entries,
                                    size_t num_parameters, Backend& backend) {
  SgdOptions options;
  options.lr = lr;
  options.momentum = config.get_double_checked("momentum", 0.0, unit_interval, "must be in [0, 1)");
  if (config.get_bool("nesterov", false)) {
    if (options.momentum <= 0) {
      config.fail("nesterov",
                  "Nesterov momentum needs momentum > 0 (momentum is " + format_number(options.momentum) + ")");
    }
    options.momentum_kind = MomentumKind::Nesterov;
  }
  options.weight_decay = config.get_double_checked("weight_decay", 0.0, non_negative, "must be >= 0");
  OptimizerSetup setup = read_setup(config, lr, options.weight_decay, entries, num_parameters);
  return std::make_unique<Sgd>(options, std::move(setup), backend);
}

std::unique_ptr<Optimizer> make_adam(ConfigMap& config, double lr, const std::vector<ParamEntry>& entries,
                                     size_t num_parameters, Backend& backend) {
  AdamOptions options;
  options.lr = lr;
  options.beta1 = config.get_double_checked("beta1", options.beta1, unit_interval, "must be in [0, 1)");
  options.beta2 = config.get_double_checked("beta2", options.beta2, unit_interval, "must be in [0, 1)");
  options.eps = config.get_double_checked("eps", options.eps, positive, "must be > 0");
  options.weight_decay = config.get_double_checked("weight_decay", 0.0, non_negative, "must be >= 0");
  if (config.get_bool("decoupled_weight_decay", false)) options.weight_decay_kind = WeightDecayKind::Decoupled;
  OptimizerSetup setup = read_setup(config, lr, options.weight_decay, entries, num_parameters);
  return std::make_unique<Adam>(options, std::move(setup), backend);
}

}  // namespace

Optimizer::Optimizer(OptimizerSetup setup, Backend& backend)
    : backend_(backend), setup_(std::move(setup)) {
  for (const UpdateRange& range : merge_adjacent(setup_.ranges)) trained_spans_.push_back({range.begin, range.end});
}

void Optimizer::check_buffer(const Tensor& t, const char* what) const {
  if (t.device() != device()) {
    throw Error(std::string("optimizer ") + name() + ": " + what + " are on " + to_string(t.device()) +
                " but the optimizer state is on " + to_string(device()) +
                " (create the optimizer with make_optimizer(..., backend) for the model's backend)");
  }
  if (t.num_elements() != num_parameters() || (num_parameters() > 0 && t.empty())) {
    throw ShapeError(std::string("optimizer ") + name() + ": " + what + " have " + std::to_string(t.num_elements()) +
                     " elements, expected " + std::to_string(num_parameters()) + " (the model's parameter count)");
  }
}

void Optimizer::check_step(const Tensor& params, const Tensor& grads, float lr) const {
  check_buffer(params, "params");
  check_buffer(grads, "grads");
  if (!std::isfinite(lr) || lr < 0) {
    throw Error(std::string("optimizer ") + name() + ": learning rate must be finite and >= 0, got " +
                format_number(lr));
  }
}

void Optimizer::clip_grad_norm(Tensor& grads) {
  if (!setup_.max_grad_norm) return;
  check_buffer(grads, "grads");
  if (!grad_norm_) {
    grad_norm_ = DeviceDouble(static_cast<double*>(backend_.allocate(sizeof(double))),
                              [backend = &backend_](double* p) { backend->release(p); });
  }
  // Every worker holds the same all-reduced gradients, so every worker gets the same norm and
  // takes the same branch; on a GPU the norm stays on the device (last_grad_norm reads it).
  backend_.clip_to_norm(grads.data(), trained_spans_, *setup_.max_grad_norm, grad_norm_.get());
}

std::optional<double> Optimizer::last_grad_norm() const {
  if (!grad_norm_) return std::nullopt;
  double norm = 0;
  backend_.copy_to_host(&norm, grad_norm_.get(), sizeof(norm));
  return norm;
}

std::string Optimizer::decay_exclusions_text(double weight_decay) const {
  if (weight_decay <= 0 || setup_.exclusions.empty()) return "";
  std::string text = " except";
  for (size_t i = 0; i < setup_.exclusions.size(); ++i) text += (i ? ", " : " ") + to_string(setup_.exclusions[i]);
  return text;
}

std::string Optimizer::common_text() const {
  std::string text;
  if (setup_.max_grad_norm) text += ", clip_grad_norm " + format_number(*setup_.max_grad_norm);
  if (setup_.frozen_parameters > 0) text += ", " + std::to_string(setup_.frozen_parameters) + " parameters frozen";
  return text;
}

std::unique_ptr<Optimizer> make_optimizer(ConfigMap& optimizer, const std::vector<ParamEntry>& entries,
                                          size_t num_parameters, Backend& backend) {
  const std::string type = optimizer.get_choice("type", {"adam", "sgd"});
  const double lr = optimizer.get_double_checked("lr", std::nullopt, positive, "must be > 0");
  if (type == "sgd") return make_sgd(optimizer, lr, entries, num_parameters, backend);
  return make_adam(optimizer, lr, entries, num_parameters, backend);
}

}  // namespace dptrain

#include "runtime/train/optimizer.h"

#include <cmath>
#include <optional>
#include <sstream>

#include "runtime/core/device.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Below this many parameters one thread does the update: starting a thread team would cost more.
constexpr size_t kParallelThreshold = size_t{1} << 15;

// Whether SGD steps along the momentum buffer (classic) or looks one step ahead (Nesterov).
enum class MomentumKind { Classic, Nesterov };

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
  Sgd(const SgdOptions& options, size_t num_parameters, DeviceKind device)
      : Optimizer(options.lr, num_parameters, device), options_(options) {
    if (options_.momentum > 0) momentum_ = Tensor({num_parameters}, device);
  }

  const char* name() const override { return "sgd"; }

  std::string describe() const override {
    std::string text = "sgd (lr " + format_number(options_.lr);
    if (options_.momentum > 0) {
      text += ", momentum " + format_number(options_.momentum);
      if (options_.momentum_kind == MomentumKind::Nesterov) text += ", nesterov";
    }
    if (options_.weight_decay > 0) text += ", weight_decay " + format_number(options_.weight_decay);
    return text + ")";
  }

  void step(Tensor& params, const Tensor& grads, float lr) override {
    check_step(params, grads, lr);
    const size_t n = params.num_elements();
    float* __restrict p = params.data();
    const float* __restrict g = grads.data();
    const float wd = static_cast<float>(options_.weight_decay);
    const float mu = static_cast<float>(options_.momentum);
    if (device_ != DeviceKind::CPU) {
      SgdUpdate u;
      u.params = p;
      u.grads = g;
      u.momentum = momentum_.empty() ? nullptr : momentum_.data();
      u.n = n;
      u.lr = lr;
      u.mu = mu;
      u.weight_decay = wd;
      u.nesterov = options_.momentum_kind == MomentumKind::Nesterov;
      require_cuda_runtime().sgd_update(u);
    } else if (momentum_.empty()) {
#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
      for (size_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
    } else if (options_.momentum_kind == MomentumKind::Classic) {
      // buf = mu * buf + g; p -= lr * buf. The buffer starts at zero, so the first step sets buf = g.
      float* __restrict buf = momentum_.data();
#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
      for (size_t i = 0; i < n; ++i) {
        const float d = g[i] + wd * p[i];
        buf[i] = mu * buf[i] + d;
        p[i] -= lr * buf[i];
      }
    } else {
      // Nesterov: buf = mu * buf + g; p -= lr * (g + mu * buf).
      float* __restrict buf = momentum_.data();
#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
      for (size_t i = 0; i < n; ++i) {
        const float d = g[i] + wd * p[i];
        buf[i] = mu * buf[i] + d;
        p[i] -= lr * (d + mu * buf[i]);
      }
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
  Adam(const AdamOptions& options, size_t num_parameters, DeviceKind device)
      : Optimizer(options.lr, num_parameters, device),
        options_(options),
        exp_avg_({num_parameters}, device),
        exp_avg_sq_({num_parameters}, device) {}

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
      text += format_number(options_.weight_decay);
    }
    return text + ")";
  }

  void step(Tensor& params, const Tensor& grads, float lr) override {
    check_step(params, grads, lr);
    const size_t n = params.num_elements();
    float* __restrict p = params.data();
    const float* __restrict g = grads.data();
    float* __restrict m = exp_avg_.data();
    float* __restrict v = exp_avg_sq_.data();

    // Per-step scalars in double, as torch computes them on the host.
    const double t = static_cast<double>(steps_ + 1);
    const double bias_correction1 = 1.0 - std::pow(options_.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(options_.beta2, t);
    const float step_size = static_cast<float>(lr / bias_correction1);
    const float bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
    const bool decoupled = options_.weight_decay_kind == WeightDecayKind::Decoupled;
    const float l2 = decoupled ? 0.0f : static_cast<float>(options_.weight_decay);
    const float shrink = decoupled ? static_cast<float>(1.0 - lr * options_.weight_decay) : 1.0f;
    const float beta1 = static_cast<float>(options_.beta1);
    const float beta2 = static_cast<float>(options_.beta2);
    const float one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
    const float one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
    const float eps = static_cast<float>(options_.eps);

    if (device_ != DeviceKind::CPU) {
      AdamUpdate u;
      u.params = p;
      u.grads = g;
      u.exp_avg = m;
      u.exp_avg_sq = v;
      u.n = n;
      u.beta1 = beta1;
      u.beta2 = beta2;
      u.one_minus_beta1 = one_minus_beta1;
      u.one_minus_beta2 = one_minus_beta2;
      u.eps = eps;
      u.l2 = l2;
      u.shrink = shrink;
      u.step_size = step_size;
      u.bias_correction2_sqrt = bias_correction2_sqrt;
      require_cuda_runtime().adam_update(u);
      ++steps_;
      return;
    }

#pragma omp parallel for simd if (parallel : n >= kParallelThreshold)
    for (size_t i = 0; i < n; ++i) {
      const float d = g[i] + l2 * p[i];
      const float mi = beta1 * m[i] + one_minus_beta1 * d;
      const float vi = beta2 * v[i] + one_minus_beta2 * d * d;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
      p[i] = p[i] * shrink - step_size * (mi / denom);
    }
    ++steps_;
  }

  std::vector<std::pair<std::string, Tensor*>> state() override {
    return {{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}};
  }

 private:
  AdamOptions options_;
  Tensor exp_avg_;     // (num_parameters): first moment m
  Tensor exp_avg_sq_;  // (num_parameters): second moment v
};

bool non_negative(double x) { return x >= 0; }
bool unit_interval(double x) { return x >= 0 && x < 1; }

std::unique_ptr<Optimizer> make_sgd(ConfigMap& config, double lr, size_t num_parameters, DeviceKind device) {
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
  return std::make_unique<Sgd>(options, num_parameters, device);
}

std::unique_ptr<Optimizer> make_adam(ConfigMap& config, double lr, size_t num_parameters, DeviceKind device) {
  AdamOptions options;
  options.lr = lr;
  options.beta1 = config.get_double_checked("beta1", options.beta1, unit_interval, "must be in [0, 1)");
  options.beta2 = config.get_double_checked("beta2", options.beta2, unit_interval, "must be in [0, 1)");
  options.eps = config.get_double_checked(
      "eps", options.eps, [](double x) { return x > 0; }, "must be > 0");
  options.weight_decay = config.get_double_checked("weight_decay", 0.0, non_negative, "must be >= 0");
  if (config.get_bool("decoupled_weight_decay", false)) options.weight_decay_kind = WeightDecayKind::Decoupled;
  return std::make_unique<Adam>(options, num_parameters, device);
}

}  // namespace

void Optimizer::check_step(const Tensor& params, const Tensor& grads, float lr) const {
  auto check = [&](const Tensor& t, const char* what) {
    if (t.device() != device_) {
      throw Error(std::string("optimizer ") + name() + ": " + what + " are on " + to_string(t.device()) +
                  " but the optimizer state is on " + to_string(device_) +
                  " (create the optimizer with make_optimizer(..., device) for the model's device)");
    }
    if (t.num_elements() != num_parameters_ || (num_parameters_ > 0 && t.empty())) {
      throw ShapeError(std::string("optimizer ") + name() + ": " + what + " have " + std::to_string(t.num_elements()) +
                       " elements, expected " + std::to_string(num_parameters_) + " (the model's parameter count)");
    }
  };
  check(params, "params");
  check(grads, "grads");
  if (!std::isfinite(lr) || lr < 0) {
    throw Error(std::string("optimizer ") + name() + ": learning rate must be finite and >= 0, got " +
                format_number(lr));
  }
}

std::unique_ptr<Optimizer> make_optimizer(ConfigMap& optimizer, size_t num_parameters, DeviceKind device) {
  const std::string type = optimizer.get_choice("type", {"adam", "sgd"});
  const double lr = optimizer.get_double_checked(
      "lr", std::nullopt, [](double x) { return x > 0; }, "must be > 0");
  if (type == "sgd") return make_sgd(optimizer, lr, num_parameters, device);
  return make_adam(optimizer, lr, num_parameters, device);
}

}  // namespace dptrain

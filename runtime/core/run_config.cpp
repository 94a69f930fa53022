#include "runtime/core/run_config.h"

#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#include "runtime/core/backend_registry.h"
#include "runtime/core/config_duplicates.h"
#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/core/parse_number.h"

namespace dptrain {

namespace {

// Applies one "a.b.c=value" override to `root`; returns the dotted key as ConfigMap paths
// spell it ("model[3].units" for "model.3.units").
std::string apply_override(YAML::Node& root, const std::string& assignment, const std::string& file) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set " + assignment + ": expected key=value, for example --set train.epochs=1");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string value_text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + key + ": value '" + value_text + "' is not valid YAML: " + e.msg);
  }
  refuse_duplicate_keys(value, "--set " + key, key);

  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw ConfigError("--set " + key + ": empty component in key");
    parts.push_back(part);
  }

  std::string path;
  YAML::Node node = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    if (node.IsSequence()) {
      const std::optional<uint64_t> index = parse_decimal(part);
      if (!index || *index >= node.size()) {
        throw ConfigError("--set " + key + ": '" + path + "' is a list of " + std::to_string(node.size()) +
                          " entries; '" + part + "' is not an index into it");
      }
      path += "[" + part + "]";
      if (last) {
        node[static_cast<size_t>(*index)] = value;
      } else {
        node.reset(node[static_cast<size_t>(*index)]);
      }
      continue;
    }
    if (node.IsScalar()) {
      throw ConfigError("--set " + key + ": '" + path + "' in " + file + " is a value, not a mapping");
    }
    path += (path.empty() ? "" : ".") + part;
    if (last) {
      node[part] = value;
    } else {
      if (!node[part] || node[part].IsNull()) node[part] = YAML::Node(YAML::NodeType::Map);
      node.reset(node[part]);
    }
  }
  return path;
}

}  // namespace

RunConfig RunConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  // Refused before reading: what is not a regular file (a directory, /dev/zero, a FIFO) or is far larger
  // than any config.
  constexpr size_t kMaxConfigBytes = size_t{16} << 20;
  size_t size = 0;
  std::string why;
  if (!regular_file_size(path, &size, &why)) {
    if (why.empty()) throw ConfigError(path + ": cannot open config file (check the path)");
    throw ConfigError(path + ": the config file " + why + " (check the path: give a YAML file)");
  }
  if (size > kMaxConfigBytes) {
    throw ConfigError(path + ": the config file holds " + byte_size_text(size) + ", more than the " +
                      byte_size_text(kMaxConfigBytes) + " a config may have (check the path: give a YAML file)");
  }
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file (check the path)");
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse(text, path, overrides);
}

const char* to_string(DeviceTransport transport) {
  switch (transport) {
    case DeviceTransport::Auto:
      return "auto";
    case DeviceTransport::Nccl:
      return "nccl";
    case DeviceTransport::Staging:
      return "staging";
  }
  return "?";
}

namespace {

// The YAML text with the overrides applied, as a mapping of sections; ConfigError otherwise.
YAML::Node load_root(const std::string& yaml, const std::string& file, const std::vector<std::string>& overrides,
                     ConfigSource& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(file + ": the config must be a mapping of sections (data, model, train, ...)");
  refuse_duplicate_keys(root, file);
  source.file = file;
  // A key set twice on the command line takes the last value, as scripts that extend a base command expect.
  for (const auto& assignment : overrides) source.overridden.insert(apply_override(root, assignment, file));
  return root;
}

// Where the top-level `key` came from: "the config", "--set" or "the default".
std::string source_of(const ConfigMap& top, const ConfigSource& source, const std::string& key) {
  if (source.overridden.count(key)) return "--set";
  return top.has(key) ? "the config" : "the default";
}

// Why `choice` ("auto", "cpu" or "cuda", from `source`) means the device it resolved to.
std::string device_reason(const std::string& choice, const std::string& source) {
  if (choice != "auto") return "device: " + choice + " from " + source;
  std::string why;
  const size_t gpus = visible_gpu_count(&why);
  if (gpus == 0) return "auto: no GPU visible: " + why;
  return "auto: " + std::to_string(gpus) + (gpus == 1 ? " GPU" : " GPUs") + " visible";
}

// Cores this worker may run on (its CPU affinity), at least 1.
size_t usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<size_t>(CPU_COUNT(&set));
  return static_cast<size_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

// A count with no practical upper end other than what memory can hold.
constexpr size_t kManyItems = size_t{1} << 40;

// `threads`: 0 (automatic) or up to 4 threads a core (and at most 1024); more than the cores is a warning.
size_t read_threads(ConfigMap& top, std::vector<std::string>& warnings) {
  const size_t cores = usable_cores();
  const size_t most = std::min<size_t>(1024, 4 * cores);
  const size_t threads = top.get_count("threads", 0, CountRange{1, most, "threads", ZeroIs::Off});
  if (threads > cores) {
    warnings.push_back(top.where("threads") + ": " + std::to_string(threads) + " threads per worker on " +
                       std::to_string(cores) + (cores == 1 ? " core" : " cores") +
                       ": the threads share cores and run slower; 0 chooses one per core");
  }
  return threads;
}

// name, seed, threads, device, precision, cudnn_deterministic and cpu_convolution.
void read_top_level(ConfigMap& top, const ConfigSource& source, RunConfig& cfg) {
  cfg.name = top.get_string("name", "run");
  cfg.seed = static_cast<uint64_t>(top.get_size("seed", 0));
  cfg.threads = read_threads(top, cfg.warnings);
  const std::string device = top.get_choice("device", {"auto", "cpu", "cuda"}, "auto");
  cfg.device = resolve_device(device);  // auto: cuda where a GPU is visible, else cpu
  cfg.device_reason = device_reason(device, source_of(top, source, "device"));
  cfg.precision = parse_precision(top.get_choice("precision", {"float32", "tf32", "bf16"}, "float32"));
  if (cfg.precision == Precision::Bf16 && cfg.device == DeviceKind::CPU) {
    top.fail("precision", "bf16 runs on the GPU only, and this run's device is cpu (" + cfg.device_reason +
                              "): set precision: float32 (--set precision=float32), or device: cuda on a GPU machine");
  }
  cfg.determinism = top.get_bool("cudnn_deterministic", false) ? Determinism::Required : Determinism::Fastest;
  const std::string conv = top.get_choice("cpu_convolution", {"auto", "onednn", "im2col"}, "auto");
  for (CpuConvolution c : {CpuConvolution::Auto, CpuConvolution::OneDnn, CpuConvolution::Im2col}) {
    if (conv == to_string(c)) cfg.cpu_convolution = c;
  }
}

// train.reproducible: auto (the default), or true or false in any spelling YAML gives them.
Reproducibility read_reproducible(ConfigMap& train) {
  const std::string text = train.get_string("reproducible", std::string("auto"));
  if (text == "auto") return Reproducibility::Auto;
  bool value = false;
  if (!YAML::convert<bool>::decode(YAML::Node(text), value)) {
    train.fail("reproducible", "expected auto, true or false, got '" + text + "'");
  }
  return value ? Reproducibility::BitExact : Reproducibility::Approximate;
}

TrainSettings read_train(ConfigMap train) {
  TrainSettings t;
  t.batch_size = train.get_count("batch_size", std::nullopt, CountRange{1, kManyItems, "samples"});
  t.epochs = train.get_count("epochs", std::nullopt, CountRange{0, kManyItems, "epochs"});
  t.drop_last = train.get_bool("drop_last", false) ? DropLast::Yes : DropLast::No;
  t.eval_batch_size = train.get_count("eval_batch_size", 1000, CountRange{1, kManyItems, "samples"});
  t.progress_seconds = train.get_number("progress_seconds", 10.0, seconds_range());
  t.reproducible = read_reproducible(train);
  t.micro_shard = train.get_count("micro_shard", 16, CountRange{1, kManyItems, "samples"});
  t.metrics_every_steps = train.get_count("metrics_every_steps", 0, CountRange{1, kManyItems, "steps", ZeroIs::Off});
  train.finish();
  t.section = std::make_shared<const ConfigMap>(std::move(train));
  return t;
}

CommSettings read_comm(ConfigMap comm) {
  CommSettings c;
  c.bucket_mb = comm.get_number("bucket_mb", 1.0, NumberRange{0, 4096, "MiB", LowerBound::Exclusive});
  c.timeout_seconds = comm.get_number("timeout_seconds", 300.0, seconds_range());
  c.heartbeat_seconds = comm.get_number("heartbeat_seconds", 10.0,
                                        NumberRange{1, kMaxConfigSeconds, "seconds", LowerBound::Inclusive, ZeroIs::Off});
  const std::string transport = comm.get_choice("device_transport", {"auto", "nccl", "staging"}, "auto");
  for (DeviceTransport t : {DeviceTransport::Auto, DeviceTransport::Nccl, DeviceTransport::Staging}) {
    if (transport == to_string(t)) c.device_transport = t;
  }
  comm.finish();
  return c;
}

CheckpointSettings read_checkpoint(ConfigMap checkpoint) {
  CheckpointSettings c;
  c.dir = checkpoint.get_string("dir", "");
  c.every_epochs = checkpoint.get_count("every_epochs", 1, CountRange{1, kManyItems, "epochs"});
  c.keep = checkpoint.get_count("keep", 3, CountRange{1, kManyItems, "checkpoints"});
  c.every_minutes = checkpoint.get_number(
      "every_minutes", 0.0, NumberRange{0, kMaxConfigSeconds / 60, "minutes", LowerBound::Exclusive, ZeroIs::Off});
  checkpoint.finish();
  return c;
}

// More workers than any job has: a larger count is a typing mistake.
constexpr size_t kMaxWorkers = size_t{1} << 20;

// The `elastic:` section; its run_dir defaults to the checkpoint folder, which it needs.
ElasticSettings read_elastic(ConfigMap elastic, const CheckpointSettings& checkpoint) {
  ElasticSettings e;
  e.enabled = elastic.get_bool("enabled", false);
  e.min_workers = elastic.get_count("min_workers", 1, CountRange{1, kMaxWorkers, "workers"});
  e.max_workers = elastic.get_count("max_workers", 0, CountRange{1, kMaxWorkers, "workers", ZeroIs::Off});
  if (e.max_workers != 0 && e.max_workers < e.min_workers) {
    elastic.fail("max_workers", "must be 0 (no limit) or at least min_workers (" + std::to_string(e.min_workers) + ")");
  }
  e.run_dir = elastic.get_string("run_dir", checkpoint.dir);
  e.wait_seconds = elastic.get_number("wait_seconds", 300.0,
                                      NumberRange{0, kMaxConfigSeconds, "seconds", LowerBound::Inclusive});
  e.handover_seconds = elastic.get_number("handover_seconds", 60.0, seconds_range());
  if (e.enabled && checkpoint.dir.empty()) {
    elastic.fail("enabled", "an elastic job needs checkpoint.dir (joiners and restarts continue from checkpoints): "
                            "set checkpoint.dir");
  }
  elastic.finish();
  return e;
}

// The `init:` section; `skip` needs `from`. Whether the entries match the model is checked once it is built.
InitSettings read_init(ConfigMap init) {
  InitSettings s;
  s.from = init.get_string("from", "");
  s.skip = init.get_string_list("skip", std::vector<std::string>{});
  s.freeze = init.get_string_list("freeze", std::vector<std::string>{});
  if (s.from.empty() && !s.skip.empty()) {
    init.fail("skip", "names what not to load from init.from, which is not set: set init.from or remove init.skip");
  }
  for (const auto* list : {&s.skip, &s.freeze}) {
    for (const std::string& entry : *list) {
      if (entry.empty() || entry == "*") {
        init.fail(list == &s.skip ? "skip" : "freeze",
                  "entry '" + entry + "' is empty or matches everything: name layers or parameters, e.g. [fc]");
      }
    }
  }
  init.finish();
  s.section = std::make_shared<const ConfigMap>(std::move(init));
  return s;
}

// The `prune:` section; an absent one leaves pruning off. Whether `layers` match the model is checked once it is built.
PruneSettings read_prune(ConfigMap prune, size_t epochs) {
  PruneSettings p;
  p.enabled = prune.node().IsMap() && prune.node().size() > 0;
  if (!p.enabled) return p;
  p.sparsity = prune.get_double_checked(
      "sparsity", std::nullopt, [](double s) { return s > 0 && s < 1; }, "must be in (0, 1), e.g. 0.8");
  const auto whole = static_cast<double>(epochs);
  p.start_epoch = prune.get_number("start_epoch", 0.0, NumberRange{0, whole, "epochs", LowerBound::Inclusive});
  p.end_epoch = prune.get_number("end_epoch", epochs > 1 ? whole - 1 : whole,
                                 NumberRange{0, whole, "epochs", LowerBound::Exclusive});
  if (p.end_epoch <= p.start_epoch) {
    prune.fail("end_epoch", "must come after start_epoch (" + std::to_string(p.start_epoch) +
                                "): pruning reaches its final sparsity at end_epoch");
  }
  p.every_steps = prune.get_count("every_steps", 50, CountRange{1, kManyItems, "steps"});
  p.layers = prune.get_string_list("layers", std::vector<std::string>{});
  p.scope = prune.get_choice("scope", {"layer", "global"}, "layer") == "global" ? PruneScope::Global : PruneScope::Layer;
  for (const std::string& entry : p.layers) {
    if (entry.empty()) prune.fail("layers", "an entry is empty: name layers or parameters, e.g. [conv1, fc]");
  }
  prune.finish();
  p.section = std::make_shared<const ConfigMap>(std::move(prune));
  return p;
}

}  // namespace

RunConfig RunConfig::parse(const std::string& yaml, const std::string& file,
                           const std::vector<std::string>& overrides) {
  auto source = std::make_shared<ConfigSource>();
  YAML::Node root = load_root(yaml, file, overrides, *source);

  RunConfig cfg;
  cfg.file = file;
  YAML::Emitter emitter;
  emitter << root;
  cfg.text = emitter.c_str();

  ConfigMap top(root, "", source);
  read_top_level(top, *source, cfg);
  cfg.train = read_train(top.get_map("train"));
  cfg.comm = read_comm(top.get_map("comm"));
  cfg.checkpoint = read_checkpoint(top.get_map("checkpoint"));
  cfg.elastic = read_elastic(top.get_map("elastic"), cfg.checkpoint);
  cfg.init = read_init(top.get_map("init"));
  cfg.prune = read_prune(top.get_map("prune"), cfg.train.epochs);

  cfg.data = std::make_shared<ConfigMap>(top.get_map("data"));
  cfg.model = top.get_map_list("model");
  if (cfg.model.empty()) top.fail("model", "the model needs at least one layer");
  cfg.optimizer = std::make_shared<ConfigMap>(top.get_map("optimizer"));
  cfg.lr_schedule = std::make_shared<ConfigMap>(top.get_map("lr_schedule"));
  top.finish();
  return cfg;
}

std::string describe_device(const RunConfig& config, const std::string& opened) {
  const std::string kind = to_string(config.device);
  std::string text = kind + " (" + config.device_reason;
  if (!opened.empty() && opened != kind) text += ", " + opened;
  return text + ")";
}

}  // namespace dptrain

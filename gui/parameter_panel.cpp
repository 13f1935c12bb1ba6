#include "gui/parameter_panel.h"

#include <cmath>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSlider>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include "model/hardware.h"
#include "sim/trace/trace.h"

namespace kvscope::gui {

namespace {

QSpinBox* int_spin(int min, int max, const QString& suffix, const QString& tip) {
  auto* s = new QSpinBox();
  s->setRange(min, max);
  s->setSuffix(suffix);
  s->setToolTip(tip);
  s->setKeyboardTracking(false);
  return s;
}

QDoubleSpinBox* real_spin(double min, double max, double step, int decimals, const QString& suffix,
                          const QString& tip) {
  auto* s = new QDoubleSpinBox();
  s->setRange(min, max);
  s->setSingleStep(step);
  s->setDecimals(decimals);
  s->setSuffix(suffix);
  s->setToolTip(tip);
  s->setKeyboardTracking(false);
  return s;
}

QString elided_path(const std::string& path, const QString& none) {
  if (path.empty()) return none;
  return QFileInfo(QString::fromStdString(path)).fileName();
}

constexpr double kThresholds[3] = {0.7, 0.8, 0.9};
const char* kThresholdNames[3] = {"aggressive", "balanced", "conservative"};

}  // namespace

ParameterPanel::ParameterPanel(QWidget* parent) : QWidget(parent) {
  auto* top = new QVBoxLayout(this);
  auto changed_int = [this](QSpinBox* s) {
    connect(s, &QSpinBox::valueChanged, this, &ParameterPanel::emit_changed);
  };
  auto changed_real = [this](QDoubleSpinBox* s) {
    connect(s, &QDoubleSpinBox::valueChanged, this, &ParameterPanel::emit_changed);
  };
  auto changed_combo = [this](QComboBox* c) {
    connect(c, &QComboBox::currentIndexChanged, this, &ParameterPanel::emit_changed);
  };

  // ---- Inputs ----
  auto* inputs = new QGroupBox(tr("Inputs"));
  auto* fi = new QFormLayout(inputs);
  auto file_row = [this](QLabel*& label, const QString& tip, auto open_signal,
                         QToolButton** clear) {
    auto* row = new QWidget();
    auto* h = new QHBoxLayout(row);
    h->setContentsMargins(0, 0, 0, 0);
    label = new QLabel();
    label->setToolTip(tip);
    label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    h->addWidget(label, 1);
    auto* open = new QToolButton();
    open->setText(tr("Open..."));
    connect(open, &QToolButton::clicked, this, open_signal);
    h->addWidget(open);
    if (clear) {
      *clear = new QToolButton();
      (*clear)->setText(tr("Clear"));
      h->addWidget(*clear);
    }
    return row;
  };
  fi->addRow(tr("Trace"), file_row(trace_, QString::fromStdString(trace_format_descriptions()),
                                   &ParameterPanel::open_trace_requested, nullptr));
  format_ = new QComboBox();
  format_->addItem(QString::fromUtf8(kAutomaticTraceFormatName.data(),
                                     static_cast<int>(kAutomaticTraceFormatName.size())));
  for (const auto& t : kTraceFormats)
    format_->addItem(QString::fromUtf8(t.name.data(), static_cast<int>(t.name.size())));
  format_->setToolTip(tr("Trace format (--format); auto detects it from the content"));
  changed_combo(format_);
  fi->addRow(tr("Trace format"), format_);

  auto* model_row = new QWidget();
  auto* mh = new QHBoxLayout(model_row);
  mh->setContentsMargins(0, 0, 0, 0);
  model_ = new QComboBox();
  for (const std::string& p : model_preset_names())
    model_->addItem(QString::fromStdString(p), QString::fromStdString(p));
  model_->setToolTip(tr("Model preset or a Hugging Face config.json (--model)"));
  changed_combo(model_);
  mh->addWidget(model_, 1);
  auto* open_model = new QToolButton();
  open_model->setText(tr("config.json..."));
  connect(open_model, &QToolButton::clicked, this, &ParameterPanel::open_model_requested);
  mh->addWidget(open_model);
  fi->addRow(tr("Model"), model_row);

  QToolButton* clear_profile = nullptr;
  fi->addRow(tr("Calibration"), file_row(profile_, tr("Calibration profile (--profile)"),
                                         &ParameterPanel::open_profile_requested, &clear_profile));
  connect(clear_profile, &QToolButton::clicked, this, &ParameterPanel::clear_profile_requested);
  gpu_ = new QComboBox();
  for (const std::string& g : hardware_preset_names()) gpu_->addItem(QString::fromStdString(g));
  gpu_->setToolTip(tr("Hardware preset whose roofline prices the operations (--gpu)"));
  changed_combo(gpu_);
  fi->addRow(tr("GPU"), gpu_);
  top->addWidget(inputs);

  // ---- Methods ----
  auto* methods = new QGroupBox(tr("Methods"));
  auto* mg = new QHBoxLayout(methods);
  for (Method m : all_methods()) {
    auto* b = new QCheckBox(QString::fromStdString(std::string(method_name(m))));
    b->setToolTip(tr("Replay and chart this method (--method)"));
    connect(b, &QCheckBox::toggled, this, &ParameterPanel::emit_changed);
    methods_[method_index(m)] = b;
    mg->addWidget(b);
  }
  top->addWidget(methods);

  // ---- Analytic ----
  auto* analytic = new QGroupBox(tr("Analytic model"));
  auto* fa = new QFormLayout(analytic);
  p_ = real_spin(0, 1, 0.05, 4, "", tr("CCV hit probability p the paper's model assumes (--p)"));
  changed_real(p_);
  fa->addRow(tr("Hit probability p"), p_);
  n_min_ = int_spin(1, 1 << 24, tr(" tokens"), tr("Shortest context length charted"));
  n_max_ = int_spin(1, 1 << 24, tr(" tokens"), tr("Longest context length charted"));
  per_doubling_ = int_spin(1, 16, "", tr("Points per doubling of N"));
  for (QSpinBox* s : {n_min_, n_max_, per_doubling_}) changed_int(s);
  fa->addRow(tr("N from"), n_min_);
  fa->addRow(tr("N to"), n_max_);
  fa->addRow(tr("Points per doubling"), per_doubling_);
  top->addWidget(analytic);

  // ---- CCV ----
  auto* ccv = new QGroupBox(tr("CCV caching"));
  auto* fc = new QFormLayout(ccv);
  l_eff_ = int_spin(0, 1024, tr(" layers"),
                    tr("Layers always computed before the cosine check (--l-eff)"));
  changed_int(l_eff_);
  fc->addRow(tr("L_eff"), l_eff_);
  auto* trow = new QWidget();
  auto* th = new QHBoxLayout(trow);
  th->setContentsMargins(0, 0, 0, 0);
  for (int i = 0; i < 3; ++i) {
    presets_[i] = new QPushButton(QString::number(kThresholds[i], 'f', 1));
    presets_[i]->setToolTip(tr("%1 threshold").arg(kThresholdNames[i]));
    presets_[i]->setCheckable(true);
    presets_[i]->setAutoExclusive(false);
    connect(presets_[i], &QPushButton::clicked, this, [this, i] { set_threshold(kThresholds[i]); });
    th->addWidget(presets_[i]);
  }
  threshold_ =
      real_spin(0.01, 1.0, 0.01, 2, "", tr("Cosine similarity needed for a hit (--threshold)"));
  th->addWidget(threshold_);
  fc->addRow(tr("Threshold"), trow);
  threshold_slider_ = new QSlider(Qt::Horizontal);
  threshold_slider_->setRange(50, 100);
  threshold_slider_->setToolTip(threshold_->toolTip());
  fc->addRow(QString(), threshold_slider_);
  connect(threshold_slider_, &QSlider::valueChanged, this,
          [this](int v) { set_threshold(v / 100.0); });
  connect(threshold_, &QDoubleSpinBox::valueChanged, this, [this](double v) { set_threshold(v); });
  d2_ = int_spin(0, 1 << 20, tr(" dims"), tr("Compressed width d2 of the CCV (--d2)"));
  d2_->setSpecialValueText(tr("d1/2"));
  changed_int(d2_);
  fc->addRow(tr("d2"), d2_);
  budget_ = real_spin(0, 1e5, 0.5, 2, tr(" GiB"), tr("CCV cache capacity (--ccv-budget)"));
  changed_real(budget_);
  fc->addRow(tr("Cache budget"), budget_);
  eviction_ = new QComboBox();
  eviction_->addItems({"lru", "lfu", "ttl"});
  eviction_->setToolTip(tr("Eviction policy (--ccv-eviction)"));
  changed_combo(eviction_);
  fc->addRow(tr("Eviction"), eviction_);
  ttl_ = real_spin(0, 1e9, 60, 0, tr(" s"), tr("Entry lifetime for ttl eviction (--ccv-ttl)"));
  changed_real(ttl_);
  fc->addRow(tr("TTL"), ttl_);
  top->addWidget(ccv);

  // ---- Fourier ----
  auto* fourier = new QGroupBox(tr("Fourier KV cache"));
  auto* ff = new QFormLayout(fourier);
  fourier_m_ = int_spin(1, 1 << 20, tr(" coeffs"),
                        tr("Spectral coefficients per compressed dim (--fourier-m)"));
  changed_int(fourier_m_);
  ff->addRow(tr("M"), fourier_m_);
  fourier_dims_ = new QLineEdit();
  fourier_dims_->setPlaceholderText(tr("half, the lowest"));
  fourier_dims_->setToolTip(
      tr("Compressed head dims: a count of the lowest (e.g. 64) or a list "
         "(e.g. 0-31,96-127) (--fourier-dims)"));
  connect(fourier_dims_, &QLineEdit::editingFinished, this, &ParameterPanel::emit_changed);
  ff->addRow(tr("Compressed dims"), fourier_dims_);
  sink_ = int_spin(0, 1 << 20, tr(" tokens"), tr("Initial tokens kept exact (--fourier-sink)"));
  window_ = int_spin(0, 1 << 24, tr(" tokens"), tr("Recent tokens kept exact (--fourier-window)"));
  changed_int(sink_);
  changed_int(window_);
  ff->addRow(tr("Sink"), sink_);
  ff->addRow(tr("Window"), window_);
  top->addWidget(fourier);

  // ---- Replay ----
  auto* replay = new QGroupBox(tr("Replay"));
  auto* fr = new QFormLayout(replay);
  gpu_memory_ = real_spin(0, 1e5, 8, 1, tr(" GiB"),
                          tr("GPU memory for weights, KV pool and CCV cache (--gpu-mem)"));
  gpu_memory_->setSpecialValueText(tr("the device's"));
  changed_real(gpu_memory_);
  fr->addRow(tr("GPU memory"), gpu_memory_);
  max_batch_ = int_spin(1, 1 << 20, tr(" seqs"), tr("Sequences per step (--max-batch)"));
  token_budget_ = int_spin(1, 1 << 24, tr(" tokens"), tr("Tokens per step (--token-budget)"));
  changed_int(max_batch_);
  changed_int(token_budget_);
  fr->addRow(tr("Max batch"), max_batch_);
  fr->addRow(tr("Token budget"), token_budget_);
  chunked_ = new QCheckBox(tr("Chunked prefill"));
  connect(chunked_, &QCheckBox::toggled, this, &ParameterPanel::emit_changed);
  fr->addRow(QString(), chunked_);
  rate_scale_ = real_spin(0.01, 1000, 0.25, 2, tr("x"),
                          tr(">1 compresses inter-arrival times (--rate-scale)"));
  changed_real(rate_scale_);
  fr->addRow(tr("Rate scale"), rate_scale_);
  max_requests_ =
      int_spin(0, 2147483647, "", tr("Replay only the first requests (--max-requests)"));
  max_requests_->setSpecialValueText(tr("whole trace"));
  changed_int(max_requests_);
  fr->addRow(tr("Requests"), max_requests_);
  skip_bad_ = new QCheckBox(tr("Skip bad records (count them)"));
  connect(skip_bad_, &QCheckBox::toggled, this, &ParameterPanel::emit_changed);
  fr->addRow(QString(), skip_bad_);
  top->addWidget(replay);
  top->addStretch(1);

  set_session(Session{});
}

QPushButton* ParameterPanel::threshold_preset(int i) const { return presets_[i]; }

QCheckBox* ParameterPanel::method_box(Method m) const { return methods_[method_index(m)]; }

void ParameterPanel::emit_changed() {
  if (!loading_) emit changed();
}

void ParameterPanel::set_threshold(double t) {
  const bool was = loading_;
  loading_ = true;
  const double rounded = std::round(t * 100.0) / 100.0;
  if (threshold_->value() != rounded) threshold_->setValue(rounded);
  threshold_slider_->setValue(static_cast<int>(std::lround(rounded * 100.0)));
  for (int i = 0; i < 3; ++i) presets_[i]->setChecked(std::abs(rounded - kThresholds[i]) < 1e-9);
  loading_ = was;
  emit_changed();
}

void ParameterPanel::set_session(const Session& s) {
  loading_ = true;
  trace_->setText(elided_path(s.trace_path, tr("(none: open or drop a trace)")));
  trace_->setToolTip(QString::fromStdString(s.trace_path));
  format_->setCurrentText(QString::fromStdString(s.trace_format));
  const QString model = QString::fromStdString(s.model);
  int mi = model_->findData(model);
  if (mi < 0) {
    model_->addItem(QFileInfo(model).fileName(), model);
    mi = model_->count() - 1;
    model_->setItemData(mi, model, Qt::ToolTipRole);
  }
  model_->setCurrentIndex(mi);
  profile_->setText(
      elided_path(s.profile_path, tr("(none: %1 roofline)").arg(QString::fromStdString(s.gpu))));
  profile_->setToolTip(QString::fromStdString(s.profile_path));
  gpu_->setCurrentText(QString::fromStdString(s.gpu));
  for (Method m : all_methods())
    method_box(m)->setChecked(std::find(s.methods.begin(), s.methods.end(), m) != s.methods.end());
  p_->setValue(s.p);
  n_min_->setValue(static_cast<int>(s.n_min_tokens));
  n_max_->setValue(static_cast<int>(s.n_max_tokens));
  per_doubling_->setValue(static_cast<int>(s.points_per_doubling));
  l_eff_->setValue(static_cast<int>(s.l_eff));
  set_threshold(s.threshold);
  d2_->setValue(s.d2 > 0 ? static_cast<int>(s.d2) : 0);
  budget_->setValue(s.ccv_budget_gib);
  eviction_->setCurrentText(QString::fromStdString(std::string(eviction_name(s.ccv_eviction))));
  ttl_->setValue(s.ccv_ttl_s);
  fourier_m_->setValue(static_cast<int>(s.fourier_m));
  fourier_dims_->setText(QString::fromStdString(s.fourier_dims));
  sink_->setValue(static_cast<int>(s.fourier_sink_tokens));
  window_->setValue(static_cast<int>(s.fourier_window_tokens));
  gpu_memory_->setValue(s.gpu_memory_gib);
  max_batch_->setValue(static_cast<int>(s.max_batch));
  token_budget_->setValue(static_cast<int>(s.token_budget_tokens));
  chunked_->setChecked(s.chunked_prefill);
  rate_scale_->setValue(s.rate_scale);
  max_requests_->setValue(s.max_requests > 0 ? static_cast<int>(s.max_requests) : 0);
  skip_bad_->setChecked(s.skip_bad_records);
  loading_ = false;
}

Session ParameterPanel::session(const Session& base) const {
  Session s = base;
  s.trace_format = format_->currentText().toStdString();
  s.model = model_->currentData().toString().toStdString();
  s.gpu = gpu_->currentText().toStdString();
  s.methods.clear();
  for (Method m : all_methods())
    if (method_box(m)->isChecked()) s.methods.push_back(m);
  s.p = p_->value();
  s.n_min_tokens = n_min_->value();
  s.n_max_tokens = n_max_->value();
  s.points_per_doubling = per_doubling_->value();
  s.l_eff = l_eff_->value();
  s.threshold = threshold_->value();
  s.d2 = d2_->value() > 0 ? d2_->value() : -1;
  s.ccv_budget_gib = budget_->value();
  s.ccv_eviction = parse_eviction(eviction_->currentText().toStdString()).value_or(Eviction::lru);
  s.ccv_ttl_s = ttl_->value();
  s.fourier_m = fourier_m_->value();
  s.fourier_dims = fourier_dims_->text().trimmed().toStdString();
  s.fourier_sink_tokens = sink_->value();
  s.fourier_window_tokens = window_->value();
  s.gpu_memory_gib = gpu_memory_->value();
  s.max_batch = max_batch_->value();
  s.token_budget_tokens = token_budget_->value();
  s.chunked_prefill = chunked_->isChecked();
  s.rate_scale = rate_scale_->value();
  s.max_requests = max_requests_->value() > 0 ? max_requests_->value() : -1;
  s.skip_bad_records = skip_bad_->isChecked();
  return s;
}

}  // namespace kvscope::gui

// The parameter panel: one widget per Session field, grouped as inputs, methods, analytic, CCV,
// Fourier and replay. It edits a Session and says when it changed; validation happens where the
// CLI does it (resolve() in session.h), so a bad value gets the CLI's message.
#pragma once

#include <QWidget>
#include <vector>

#include "gui/session.h"

class QButtonGroup;
class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSlider;
class QSpinBox;

namespace kvscope::gui {

class ParameterPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ParameterPanel(QWidget* parent = nullptr);

  // Shows `s` without emitting changed().
  void set_session(const Session& s);
  // The panel's values over `base` (the view and anything the panel does not show come from it).
  Session session(const Session& base) const;

  // Widgets tests and the main window drive directly.
  QDoubleSpinBox* p_spin() const { return p_; }
  QSpinBox* l_eff_spin() const { return l_eff_; }
  QDoubleSpinBox* threshold_spin() const { return threshold_; }
  QSlider* threshold_slider() const { return threshold_slider_; }
  QPushButton* threshold_preset(int i) const;  // 0: 0.7, 1: 0.8, 2: 0.9
  QSpinBox* d2_spin() const { return d2_; }
  QSpinBox* fourier_m_spin() const { return fourier_m_; }
  QLineEdit* fourier_dims_edit() const { return fourier_dims_; }
  QComboBox* model_combo() const { return model_; }
  QCheckBox* method_box(Method m) const;

 signals:
  void changed();
  void open_trace_requested();
  void open_model_requested();
  void open_profile_requested();
  void clear_profile_requested();

 private:
  void emit_changed();
  void set_threshold(double t);

  bool loading_ = false;
  QLabel* trace_ = nullptr;
  QComboBox* format_ = nullptr;
  QComboBox* model_ = nullptr;
  QLabel* profile_ = nullptr;
  QComboBox* gpu_ = nullptr;
  std::vector<QCheckBox*> methods_ =
      std::vector<QCheckBox*>(all_methods().size());  // [method_index]
  QDoubleSpinBox* p_ = nullptr;
  QSpinBox* n_min_ = nullptr;
  QSpinBox* n_max_ = nullptr;
  QSpinBox* per_doubling_ = nullptr;
  QSpinBox* l_eff_ = nullptr;
  QDoubleSpinBox* threshold_ = nullptr;
  QSlider* threshold_slider_ = nullptr;
  QPushButton* presets_[3] = {};
  QSpinBox* d2_ = nullptr;
  QDoubleSpinBox* budget_ = nullptr;
  QComboBox* eviction_ = nullptr;
  QDoubleSpinBox* ttl_ = nullptr;
  QSpinBox* fourier_m_ = nullptr;
  QLineEdit* fourier_dims_ = nullptr;
  QSpinBox* sink_ = nullptr;
  QSpinBox* window_ = nullptr;
  QDoubleSpinBox* gpu_memory_ = nullptr;
  QSpinBox* max_batch_ = nullptr;
  QSpinBox* token_budget_ = nullptr;
  QCheckBox* chunked_ = nullptr;
  QDoubleSpinBox* rate_scale_ = nullptr;
  QSpinBox* max_requests_ = nullptr;
  QCheckBox* skip_bad_ = nullptr;
};

}  // namespace kvscope::gui

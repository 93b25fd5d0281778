#include "pim/calibration/adc_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pim::calibration {
namespace {

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A nice tick step for a range.
double TickStep(double span) {
  if (!(span > 0)) return 1;
  const double raw = span / 6;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

// A line plot in inline SVG.
class SvgPlot {
 public:
  SvgPlot(std::string title, std::string x_label, std::string y_label, double x0, double x1, double y0, double y1)
      : title_(std::move(title)), x_label_(std::move(x_label)), y_label_(std::move(y_label)) {
    if (!(x1 > x0)) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;
    x0_ = x0, x1_ = x1, y0_ = y0, y1_ = y1;
  }
  void Line(const std::vector<std::pair<double, double>>& pts, const std::string& color, double width,
            double opacity = 1, bool dashed = false) {
    if (pts.empty()) return;
    std::string d;
    for (const auto& [x, y] : pts) {
      if (std::isfinite(x) && std::isfinite(y)) absl::StrAppend(&d, absl::StrFormat("%.1f,%.1f ", X(x), Y(y)));
    }
    absl::StrAppend(&body_, "<polyline fill=\"none\" stroke=\"", color, "\" stroke-width=\"", width,
                    "\" stroke-opacity=\"", opacity, "\"", dashed ? " stroke-dasharray=\"4 3\"" : "",
                    " points=\"", d, "\"/>\n");
  }
  void Points(const std::vector<std::pair<double, double>>& pts, const std::string& color) {
    for (const auto& [x, y] : pts) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      absl::StrAppend(&body_, absl::StrFormat("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", X(x),
                                              Y(y), color));
    }
  }
  void Legend(const std::string& text, const std::string& color) {
    const double y = kTop + 14 + 14 * legends_++;
    absl::StrAppend(&body_, absl::StrFormat("<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"3\" fill=\"%s\"/>"
                                            "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%s</text>\n",
                                            kLeft + 10, y - 4, color, kLeft + 24, y, Escape(text)));
  }
  std::string Svg() const {
    std::string s = absl::StrFormat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                                    "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
                                    kWidth, kHeight, kWidth, kHeight);
    absl::StrAppend(&s, absl::StrFormat("<text x=\"%d\" y=\"16\" font-size=\"13\" font-weight=\"bold\">%s</text>\n",
                                        kLeft, Escape(title_)));
    absl::StrAppend(&s, absl::StrFormat("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
                                        "stroke=\"#999\"/>\n",
                                        kLeft, kTop, kWidth - kLeft - kRight, kHeight - kTop - kBottom));
    const double xs = TickStep(x1_ - x0_), ys = TickStep(y1_ - y0_);
    for (double x = std::ceil(x0_ / xs) * xs; x <= x1_ + 1e-9; x += xs) {
      absl::StrAppend(&s, absl::StrFormat("<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                                          "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%g</text>\n",
                                          X(x), kTop, X(x), kHeight - kBottom, X(x), kHeight - kBottom + 13, x));
    }
    for (double y = std::ceil(y0_ / ys) * ys; y <= y1_ + 1e-9; y += ys) {
      absl::StrAppend(&s, absl::StrFormat("<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                                          "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%g</text>\n",
                                          kLeft, Y(y), kWidth - kRight, Y(y), kLeft - 4, Y(y) + 3, y));
    }
    absl::StrAppend(&s, absl::StrFormat("<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
                                        (kLeft + kWidth - kRight) / 2, kHeight - 4, Escape(x_label_)));
    absl::StrAppend(&s, absl::StrFormat("<text x=\"12\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
                                        "transform=\"rotate(-90 12 %d)\">%s</text>\n",
                                        (kTop + kHeight - kBottom) / 2, (kTop + kHeight - kBottom) / 2,
                                        Escape(y_label_)));
    absl::StrAppend(&s, body_, "</svg>\n");
    return s;
  }

 private:
  static constexpr int kWidth = 620, kHeight = 300, kLeft = 52, kRight = 12, kTop = 26, kBottom = 34;
  double X(double x) const { return kLeft + (x - x0_) / (x1_ - x0_) * (kWidth - kLeft - kRight); }
  double Y(double y) const {
    y = std::clamp(y, y0_, y1_);
    return kHeight - kBottom - (y - y0_) / (y1_ - y0_) * (kHeight - kTop - kBottom);
  }
  std::string title_, x_label_, y_label_, body_;
  double x0_, x1_, y0_, y1_;
  int legends_ = 0;
};

std::string Fmt(double v, int digits = 3) { return absl::StrFormat("%.*f", digits, v); }

void Group(const AdcCalibration& cal, int bits, AdcMode mode, std::string* html) {
  std::vector<const AdcColumnResult*> cols;
  for (const AdcColumnResult& c : cal.columns) {
    if (c.fit.adc_bits == bits && c.fit.mode == mode) cols.push_back(&c);
  }
  if (cols.empty()) return;
  const int lo = LowestCode(mode, bits), hi = HighestCode(mode, bits);
  const int count = (1 << bits) - 1;
  auto worst = *std::max_element(cols.begin(), cols.end(), [](auto* a, auto* b) {
    return a->fit.inl_max_lsb < b->fit.inl_max_lsb;
  });
  auto best = *std::min_element(cols.begin(), cols.end(), [](auto* a, auto* b) {
    return a->fit.inl_max_lsb < b->fit.inl_max_lsb;
  });
  auto stat = [&](auto get) {
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (auto* c : cols) {
      const double v = get(c->fit);
      mn = std::min(mn, v);
      mx = std::max(mx, v);
      sum += v;
    }
    return absl::StrCat("<td>", Fmt(mn), "</td><td>", Fmt(sum / double(cols.size())), "</td><td>", Fmt(mx), "</td>");
  };
  int unmeasured = 0;
  for (auto* c : cols) unmeasured += int(std::count(c->fit.measured.begin(), c->fit.measured.end(), false));
  absl::StrAppend(html, "<h2>", bits, "-bit ", AdcModeName(mode), " conversions (codes ", lo, "..", hi, "), ",
                  cols.size(), " columns</h2>\n");
  absl::StrAppend(html, "<table><tr><th>figure</th><th>min</th><th>mean</th><th>max</th></tr>\n",
                  "<tr><td>gain</td>", stat([](const ColumnFit& f) { return f.gain; }), "</tr>\n",
                  "<tr><td>offset (LSB)</td>", stat([](const ColumnFit& f) { return f.offset_lsb; }), "</tr>\n",
                  "<tr><td>noise sigma (LSB)</td>", stat([](const ColumnFit& f) { return f.noise_sigma_lsb; }), "</tr>\n",
                  "<tr><td>INL max (LSB)</td>", stat([](const ColumnFit& f) { return f.inl_max_lsb; }), "</tr>\n",
                  "<tr><td>INL rms (LSB)</td>", stat([](const ColumnFit& f) { return f.inl_rms_lsb; }), "</tr>\n",
                  "<tr><td>DNL max (LSB)</td>", stat([](const ColumnFit& f) { return f.dnl_max_lsb; }), "</tr>\n",
                  "<tr><td>DNL rms (LSB)</td>", stat([](const ColumnFit& f) { return f.dnl_rms_lsb; }), "</tr>\n",
                  "</table>\n<p>", unmeasured, " thresholds over all columns lay outside the sweep and were ",
                  "extrapolated from the fitted line.</p>\n<div class=\"plots\">\n");

  // Transfer curves.
  double u0 = INFINITY, u1 = -INFINITY;
  for (auto* c : {worst, best}) {
    for (const TransferSample& t : c->transfer) {
      u0 = std::min(u0, t.u);
      u1 = std::max(u1, t.u);
    }
  }
  SvgPlot transfer(absl::StrCat("Measured transfer (mean code over repeats)"), "input u = p / step (LSB)", "code",
                   u0, u1, lo - 1, hi + 1);
  // The ideal staircase over [u0, u1]: code c for u in [c - 0.5, c + 0.5), a riser at each c + 0.5.
  auto ideal_code = [&](double u) { return std::clamp(std::floor(u + 0.5), double(lo), double(hi)); };
  std::vector<std::pair<double, double>> ideal = {{u0, ideal_code(u0)}};
  for (int c = lo; c < hi; ++c) {
    const double riser = c + 0.5;
    if (riser <= u0 || riser >= u1) continue;
    ideal.push_back({riser, double(c)});
    ideal.push_back({riser, double(c + 1)});
  }
  ideal.push_back({u1, ideal_code(u1)});
  transfer.Line(ideal, "#999", 1, 1, true);
  transfer.Legend("ideal", "#999");
  for (auto [c, color] : {std::pair{worst, "#c0392b"}, std::pair{best, "#2471a3"}}) {
    std::vector<std::pair<double, double>> pts;
    for (const TransferSample& t : c->transfer) pts.push_back({t.u, t.mean_code});
    transfer.Line(pts, color, 1.4);
    transfer.Legend(absl::StrCat(c == worst ? "worst INL: " : "best INL: ", "macro ", c->macro, " column ", c->column),
                    color);
  }
  absl::StrAppend(html, transfer.Svg());

  // INL and DNL against code for every column.
  double inl_lim = 0.25, dnl_lim = 0.25;
  for (auto* c : cols) {
    inl_lim = std::max(inl_lim, c->fit.inl_max_lsb * 1.1);
    dnl_lim = std::max(dnl_lim, c->fit.dnl_max_lsb * 1.1);
  }
  SvgPlot inl("INL per threshold, every column (worst in red)", "threshold index", "INL (LSB)", 0, count - 1,
              -inl_lim, inl_lim);
  SvgPlot dnl("DNL per code, every column (worst in red)", "code index", "DNL (LSB)", 1, std::max(count - 1, 2),
              -dnl_lim, dnl_lim);
  const double opacity = std::max(0.08, std::min(0.6, 8.0 / double(cols.size())));
  for (auto* c : cols) {
    std::vector<std::pair<double, double>> a, b;
    for (int i = 0; i < count; ++i) {
      if (c->fit.measured[size_t(i)]) a.push_back({double(i), c->fit.inl_lsb[size_t(i)]});
    }
    for (size_t i = 0; i < c->fit.dnl_lsb.size(); ++i) {
      if (c->fit.measured[i] && c->fit.measured[i + 1]) b.push_back({double(i + 1), c->fit.dnl_lsb[i]});
    }
    const bool is_worst = c == worst;
    inl.Line(a, is_worst ? "#c0392b" : "#2471a3", is_worst ? 1.6 : 0.8, is_worst ? 1 : opacity);
    dnl.Line(b, is_worst ? "#c0392b" : "#2471a3", is_worst ? 1.6 : 0.8, is_worst ? 1 : opacity);
  }
  absl::StrAppend(html, inl.Svg(), dnl.Svg());

  // Per-column figures.
  double fig_max = 0.1;
  for (auto* c : cols) fig_max = std::max({fig_max, c->fit.noise_sigma_lsb, c->fit.inl_max_lsb, c->fit.dnl_max_lsb});
  SvgPlot per("Per column", "column (macro * columns + column)", "LSB", 0, double(cal.chip.spec.macros * cal.chip.spec.columns),
              0, fig_max * 1.1);
  std::vector<std::pair<double, double>> noise, inl_max, dnl_max;
  for (auto* c : cols) {
    const double x = double(c->macro * cal.chip.spec.columns + c->column);
    noise.push_back({x, c->fit.noise_sigma_lsb});
    inl_max.push_back({x, c->fit.inl_max_lsb});
    dnl_max.push_back({x, c->fit.dnl_max_lsb});
  }
  per.Points(inl_max, "#c0392b");
  per.Points(dnl_max, "#27ae60");
  per.Points(noise, "#2471a3");
  per.Legend("INL max", "#c0392b");
  per.Legend("DNL max", "#27ae60");
  per.Legend("noise sigma", "#2471a3");
  absl::StrAppend(html, per.Svg(), "</div>\n");

  absl::StrAppend(html, "<details><summary>Every column</summary>\n<table><tr><th>macro</th><th>column</th>"
                        "<th>gain</th><th>offset</th><th>noise</th><th>INL max</th><th>INL rms</th>"
                        "<th>DNL max</th><th>DNL rms</th><th>noise resolved at</th></tr>\n");
  for (auto* c : cols) {
    const ColumnFit& f = c->fit;
    absl::StrAppend(html, "<tr><td>", c->macro, "</td><td>", c->column, "</td><td>", Fmt(f.gain, 4), "</td><td>",
                    Fmt(f.offset_lsb), "</td><td>", Fmt(f.noise_sigma_lsb), "</td><td>", Fmt(f.inl_max_lsb),
                    "</td><td>", Fmt(f.inl_rms_lsb), "</td><td>", Fmt(f.dnl_max_lsb), "</td><td>",
                    Fmt(f.dnl_rms_lsb), "</td><td>", f.resolved_thresholds, " thresholds</td></tr>\n");
  }
  absl::StrAppend(html, "</table></details>\n");
}

}  // namespace

std::string AdcReportHtml(const AdcCalibration& cal) {
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>ADC calibration</title>\n"
      "<style>body{font-family:sans-serif;margin:24px;max-width:1300px}table{border-collapse:collapse;"
      "margin:8px 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}"
      ".plots svg{margin:6px;border:1px solid #eee}</style></head><body>\n";
  absl::StrAppend(&html, "<h1>ADC calibration of ", Escape(cal.chip.spec.name), "</h1>\n<table>",
                  "<tr><th>device</th><td>", Escape(cal.device), "</td></tr>",
                  "<tr><th>serial number</th><td>", Escape(cal.chip.serial_number), "</td></tr>",
                  "<tr><th>firmware</th><td>", Escape(cal.chip.firmware_version), "</td></tr>",
                  "<tr><th>repeats per point</th><td>", cal.options.repeats, "</td></tr>",
                  "<tr><th>ADC step settings</th><td>", cal.options.step_settings, "</td></tr>",
                  "<tr><th>vectors / conversions</th><td>", cal.vectors, " / ", cal.conversions, "</td></tr>",
                  "</table>\n<p>Thresholds are effective (gain and offset inside them), in code-index space; INL and "
                  "DNL are relative to the least-squares line through the measured thresholds, in units of its "
                  "slope (the mean code width); the noise is the pooled probit width in the same unit. Method: "
                  "docs/calibration.md.</p>\n");
  if (!cal.unreachable.empty()) {
    absl::StrAppend(&html, "<p>", cal.unreachable.size(),
                    " column/mode pairs host no ADC in that mode and were not measured (e.g. ",
                    Escape(cal.unreachable.front()), ").</p>\n");
  }
  for (int bits : cal.options.adc_bits) {
    for (AdcMode mode : cal.options.modes) Group(cal, bits, mode, &html);
  }
  absl::StrAppend(&html, "</body></html>\n");
  return html;
}

}  // namespace pim::calibration

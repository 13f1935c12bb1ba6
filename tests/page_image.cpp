#include "page_image.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kvscope::testing {

double PageImage::fraction_non_white() const {
  if (rgb.empty()) return 0;
  size_t n = 0;
  for (size_t i = 0; i + 2 < rgb.size(); i += 3)
    if (rgb[i] < 235 || rgb[i + 1] < 235 || rgb[i + 2] < 235) ++n;
  return static_cast<double>(n) / static_cast<double>(rgb.size() / 3);
}

double PageImage::fraction_coloured() const {
  if (rgb.empty()) return 0;
  size_t n = 0;
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
    const int lo = std::min({rgb[i], rgb[i + 1], rgb[i + 2]});
    const int hi = std::max({rgb[i], rgb[i + 1], rgb[i + 2]});
    if (hi - lo > 60) ++n;
  }
  return static_cast<double>(n) / static_cast<double>(rgb.size() / 3);
}

PageImage read_ppm(const std::string& path, std::string& error) {
  PageImage img;
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int maxval = 0;
  in >> magic >> img.width >> img.height >> maxval;
  in.get();  // the single whitespace after the header
  if (!in || magic != "P6" || maxval != 255 || img.width <= 0 || img.height <= 0) {
    error = path + ": not a binary PPM with maxval 255";
    return PageImage{};
  }
  img.rgb.resize(static_cast<size_t>(img.width) * static_cast<size_t>(img.height) * 3);
  in.read(reinterpret_cast<char*>(img.rgb.data()), static_cast<std::streamsize>(img.rgb.size()));
  if (!in) {
    error = path + ": truncated PPM";
    return PageImage{};
  }
  return img;
}

PageImage render_pdf_page(const std::string& pdf, int page, int dpi, std::string& error) {
  const std::string stem = std::filesystem::temp_directory_path().string() + "/kvscope-page-" +
                           std::to_string(::getpid());
  const std::string cmd = "pdftoppm -r " + std::to_string(dpi) + " -f " + std::to_string(page) +
                          " -l " + std::to_string(page) + " -singlefile '" + pdf + "' '" + stem +
                          "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    error = "pdftoppm failed on " + pdf;
    return PageImage{};
  }
  PageImage img = read_ppm(stem + ".ppm", error);
  std::remove((stem + ".ppm").c_str());
  return img;
}

int pdf_page_count(const std::string& pdf) {
  FILE* p = ::popen(("pdfinfo '" + pdf + "' 2>/dev/null").c_str(), "r");
  if (!p) return -1;
  char line[512];
  int pages = -1;
  while (std::fgets(line, sizeof line, p))
    if (std::sscanf(line, "Pages: %d", &pages) == 1) break;
  ::pclose(p);
  return pages;
}

}  // namespace kvscope::testing

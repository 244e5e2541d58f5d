// Several reports side by side (`efficientllm report DIR DIR...`): every run of every report, one
// row each with its report's world size and hosts, and ratios against a baseline run — the first
// report's run of the same name, else the first report's first run.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/table.hpp"

namespace ellm {

// `reports`: (directory as given, its report.json). The result is docs/report.schema.json's
// "comparison" document.
nlohmann::json compare_reports(const std::vector<std::pair<std::string, nlohmann::json>>& reports);
// Formatted for reading (Markdown) or raw for spreadsheets (CSV).
Table comparison_table(const nlohmann::json& comparison, bool raw_numbers);

}  // namespace ellm

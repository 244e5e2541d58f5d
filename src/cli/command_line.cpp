#include "cli/command_line.hpp"

#include <string>
#include <vector>

namespace ellm::cli {

namespace po = boost::program_options;

po::variables_map parse_command_line(int argc, char** argv, const po::options_description& desc,
                                     const char* positional, int max_positional) {
  po::options_description hidden, all;
  if (max_positional == 1) hidden.add_options()(positional, po::value<std::string>());
  else hidden.add_options()(positional, po::value<std::vector<std::string>>());
  all.add(desc).add(hidden);
  po::positional_options_description positions;
  positions.add(positional, max_positional);
  po::variables_map vm;
  po::store(po::command_line_parser(argc - 1, argv + 1).options(all).positional(positions).run(), vm);
  po::notify(vm);
  return vm;
}

}  // namespace ellm::cli

// The command line of a subcommand (argv[1] is the command), parsed the one way every
// subcommand parses it.
#pragma once
#include <boost/program_options.hpp>

namespace ellm::cli {

// `desc`'s options, and the positional arguments as the hidden option `positional`: a string when
// `max_positional` is 1, else a vector of strings (-1: any number). Throws
// boost::program_options::error on bad input (the caller prints it with `desc`).
boost::program_options::variables_map parse_command_line(int argc, char** argv,
                                                         const boost::program_options::options_description& desc,
                                                         const char* positional, int max_positional);

}  // namespace ellm::cli

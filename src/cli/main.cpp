#include "cli/commands.hpp"

int main(int argc, char** argv) { return ellm::cli::main(argc, argv); }

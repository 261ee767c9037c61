// seckill-node: see node/startup.hpp.
#include "node/startup.hpp"

int main(int argc, char** argv) {
  return seckill::run_node(argc, argv);
}

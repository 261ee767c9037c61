// seckill-node: see node/node.hpp.
#include "node/node.hpp"

int main(int argc, char** argv) {
  return seckill::run_node(argc, argv);
}

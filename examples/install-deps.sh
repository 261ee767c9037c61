#!/usr/bin/env bash
# Installs what seckill needs to build and test, from Debian 12's packages,
# by name, and only what is missing (run as root). Every dependency of the
# project is listed here and nowhere else.
set -euo pipefail
packages=(
  g++ make cmake           # the toolchain
  libcaf-dev               # C++ Actor Framework 0.17.6 (core + io)
  libcaf-openssl0.17 libssl-dev # CAF's TLS module for the cluster port, OpenSSL
  openssl                  # makes the certificates of the TLS example and tests
  libsqlite3-dev           # the store
  libprotobuf-dev protobuf-compiler # the API's DTOs and their JSON mapping
  libspdlog-dev            # key=value event logs
  catch2                   # the tests (v2, header-only)
  libboost-dev             # Boost.Beast/Asio for HTTP (header-only)
  nlohmann-json3-dev       # strict JSON syntax check of request bodies
  curl                     # the demo script talks to the node with it
  iptables iproute2        # the partition probe cuts one member off another (ss finds the link)
  clang libclang-rt-14-dev # examples/fuzz.sh: clang 14 and its libFuzzer, ASan, UBSan runtimes
  clang-format             # the tidy test: the tree must be clang-format clean (.clang-format)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

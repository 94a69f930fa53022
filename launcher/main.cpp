#include <cstdio>

int main() {
  std::puts("dptrain");
  return 0;
}

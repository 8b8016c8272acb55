// Command bench measures the operator at scale (make bench); see docs/performance.md.
package main

func main() {}

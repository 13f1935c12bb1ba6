// How the CPU backend's idle OpenMP threads wait between parallel regions, and the programs'
// choice of it. libgomp's default lets a thread that has finished its share spin for about
// 300,000 rounds before it sleeps. On the 2-core virtual machines kvscope is checked on, those
// spins slow the thread still working: a two-thread kvscope check of kvscope-tiny measured the
// Fourier methods' prefill and mixed steps at 2.3-2.4 s with spinning threads and 1.5-1.7 s with
// sleeping ones, and priced them 35-56% low only in the first case (sim/FIDELITY.md), because
// the step tables, timed back to back, hardly see the spins. Sleeping at once costs a wake-up
// per region instead, the same in a table as in a step.
#pragma once

#include <string>

namespace kvscope::kernels::cpu {

// The policy in force, from the environment libgomp read when it loaded: "passive", "active",
// "spin N" (GOMP_SPINCOUNT) or "default (spin, then sleep)".
std::string openmp_wait_policy();

// For a program's main(), first thing: when the environment says nothing of how OpenMP threads
// wait (neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT), sets OMP_WAIT_POLICY=passive and executes
// the program again with the same arguments, since libgomp reads the policy only when it loads.
// Returns (having done nothing) when the environment already says, or when the program cannot
// be executed again; the policy in force is then what openmp_wait_policy() reports.
void use_passive_openmp_wait(char** argv);

}  // namespace kvscope::kernels::cpu

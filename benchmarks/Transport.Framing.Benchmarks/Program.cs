using BenchmarkDotNet.Running;

// Micro-benchmarks of the framing toolkit and the RESP plugin: time and allocated bytes per message.
//   dotnet run -c Release --project benchmarks/Transport.Framing.Benchmarks -- --filter '*'
//   dotnet run -c Release --project benchmarks/Transport.Framing.Benchmarks -- --filter '*Framer*' --job short
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

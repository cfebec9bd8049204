// `posteriors`: the main job (the cold-posterior study) and other commands. See Commands/Cli.cs.
// Training reuses megabyte-sized buffers every step; keep them on the heap (see NativeAllocator).
Posteriors.Native.NativeAllocator.KeepBuffersOnHeap();
return Posteriors.Cli.Commands.Cli.Run(args);

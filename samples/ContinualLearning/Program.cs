// Training reuses megabyte-sized buffers every step; keep them on the heap (see NativeAllocator).
Posteriors.Native.NativeAllocator.KeepBuffersOnHeap();
return Posteriors.Samples.ContinualLearning.ContinualLearningApp.Run(args);

namespace Posteriors.Tests.Traces;

/// <summary>One intra-op thread: on 2 shared cores, more threads only contend (a 5× slowdown measured).</summary>
[SetUpFixture]
public class ThreadsFixture
{
    [OneTimeSetUp]
    public void OneThread() => TorchSharp.torch.set_num_threads(1);
}

// No namespace: NUnit runs this set-up fixture once for the whole assembly.

/// <summary>
/// dotnet test runs the test assemblies side by side on our 2-core machines; libtorch's own thread pool per process
/// would oversubscribe the cores (measured about 5× slower for the small tensors of these tests).
/// </summary>
[SetUpFixture]
public sealed class OneTorchThread
{
    [OneTimeSetUp]
    public void OneThread() => TorchSharp.torch.set_num_threads(1);
}

// No namespace: NUnit runs this set-up fixture once for the whole assembly.

/// <summary>
/// dotnet test runs the test assemblies side by side on 2-core machines; the in-process silos share one libtorch, and its
/// own thread pool would oversubscribe the cores. One thread also fixes the reduction order of every kernel.
/// </summary>
[SetUpFixture]
public sealed class OneTorchThread
{
    [OneTimeSetUp]
    public void OneThread() => TorchSharp.torch.set_num_threads(1);
}

// Runs one tensor operation on mismatched shapes ([2, 3] by [4, 5]) and reports how it failed:
// exit 0 = no error, 1 = a .NET exception (printed), anything else = the process was ended by the native library.
using Posteriors;
using Posteriors.Native;
using static TorchSharp.torch;

NativeSetup.EnsureTorchLoaded();
var a = ones(2, 3);
var b = ones(4, 5);
Func<Tensor> operation = args.FirstOrDefault() switch
{
    "matmul" => () => a.matmul(b),
    "checked-matmul" => () => Checked.MatMul(a, b),
    "mm" => () => a.mm(b),
    var other => throw new ArgumentException($"Unknown operation '{other}'; use matmul, checked-matmul or mm."),
};
try
{
    operation();
    Console.WriteLine("no error");
    return 0;
}
catch (Exception e)
{
    Console.WriteLine($"{e.GetType().Name}: {e.Message}");
    return 1;
}

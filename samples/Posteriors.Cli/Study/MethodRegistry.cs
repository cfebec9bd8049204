using Posteriors.Cli.Study.Methods;

namespace Posteriors.Cli.Study;

/// <summary>The study's methods, in the order they run and appear in tables.</summary>
public static class MethodRegistry
{
    /// <summary>Every method.</summary>
    public static IReadOnlyList<IStudyMethod> All { get; } = new IStudyMethod[]
    {
        new MapMethod(),
        new ParallelSghmcMethod(tempered: false),
        new ParallelSghmcMethod(tempered: true),
        new SerialSghmcMethod(),
        new DiagViMethod(),
        new DiagLaplaceMethod(ggn: false, linearised: false),
        new DiagLaplaceMethod(ggn: false, linearised: true),
        new DiagLaplaceMethod(ggn: true, linearised: false),
        new DiagLaplaceMethod(ggn: true, linearised: true),
        new KfacLaplaceMethod(tuned: false),
        new KfacLaplaceMethod(tuned: true),
    };

    /// <summary>The methods of the quick (default) run.</summary>
    public static IReadOnlyList<string> QuickDefaults { get; } = new[] { "map", "ensemble", "sghmc-parallel", "laplace-ggn-lin" };

    /// <summary>The method with that name (case-insensitive), or null.</summary>
    public static IStudyMethod? Find(string name) => All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));
}

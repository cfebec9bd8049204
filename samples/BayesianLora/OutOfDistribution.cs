using TorchSharp;
using static TorchSharp.torch;

namespace Posteriors.Samples.BayesianLora;

/// <summary>Out-of-distribution statements for a model fine-tuned on English license texts.</summary>
internal static class OutOfDistribution
{
    /// <summary>Plain sentences in German, French, Spanish, Italian and Dutch (written for this sample).</summary>
    public static readonly string[] Foreign =
    {
        "Der kleine Hund läuft jeden Morgen mit seinem Besitzer durch den grünen Park am Fluss entlang.",
        "Wir haben gestern Abend in der Küche zusammen Brot gebacken und danach lange über das Wetter geredet.",
        "Im Winter schneit es in den Bergen oft so stark, dass die Straßen für mehrere Tage gesperrt bleiben.",
        "Le petit chat dort tranquillement sur le rebord de la fenêtre pendant que la pluie tombe dehors.",
        "Nous irons au marché samedi matin pour acheter des pommes, du fromage et une baguette fraîche.",
        "La bibliothèque de la ville ouvre ses portes à neuf heures et ferme tard le jeudi soir.",
        "El tren sale de la estación a las ocho y llega a la costa justo antes del mediodía.",
        "Mi abuela cocina una sopa de verduras muy rica cuando hace frío en el pueblo.",
        "Los niños juegan al fútbol en la plaza hasta que sus padres los llaman para cenar.",
        "La mattina presto il fornaio prepara il pane e le strade profumano di farina calda.",
        "Abbiamo visitato un piccolo museo vicino al lago e poi abbiamo mangiato un gelato al limone.",
        "De fietsers rijden langs het kanaal terwijl de zon langzaam achter de molens ondergaat.",
    };

    /// <summary>The characters of each row of <paramref name="windows"/> shuffled (same characters, no language structure).</summary>
    public static Tensor Shuffled(Tensor windows, Generator generator)
    {
        var rows = Enumerable.Range(0, (int)windows.shape[0]).Select(i =>
            windows[i].index_select(0, randperm(windows.shape[1], generator: generator).to(windows.device))).ToArray();
        return stack(rows);
    }
}

/**
 * Class names and prompt templates of the twelve tasks that FusionBench's TALL14 and TALL20 lists add to TA8, as
 * FusionBench's `fusion_bench/tasks/clip_classification/<module>.py` lists them (modules flower102, pcam, fer2013,
 * oxford_iiit_pet, stl10, cifar100 (its `fine_label` list), cifar10, food101, fashion_mnist, emnist_letters, kmnist,
 * rendered_sst2). Labels are in dataset order; templates have `{c}` where the class name goes. The heads depend on the
 * exact strings, so they are copied word for word, quirks included: "pink-yellow dahlia?" (flowers), "cra" for crab
 * and underscores (CIFAR-100, pets), "T - shirt / top" (Fashion-MNIST), "digit character" for letters (EMNIST), the
 * hiragana of KMNIST, and PCam's template without a final period.
 */
import type { TaskPrompts } from './prompts';

/** The two templates FusionBench's STL-10 and Fashion-MNIST modules share. */
const PHOTO_TEMPLATES = ['a photo of a {c}.', 'a photo of the {c}.'];

/** The 18 templates FusionBench's CIFAR-10 and CIFAR-100 modules share (CLIP's CIFAR prompts), in their order. */
const CIFAR_TEMPLATES = [
  'a photo of a {c}.', 'a blurry photo of a {c}.', 'a black and white photo of a {c}.', 'a low contrast photo of a {c}.',
  'a high contrast photo of a {c}.', 'a bad photo of a {c}.', 'a good photo of a {c}.', 'a photo of a small {c}.',
  'a photo of a big {c}.', 'a photo of the {c}.', 'a blurry photo of the {c}.', 'a black and white photo of the {c}.',
  'a low contrast photo of the {c}.', 'a high contrast photo of the {c}.', 'a bad photo of the {c}.', 'a good photo of the {c}.',
  'a photo of the small {c}.', 'a photo of the big {c}.',
];

export const OXFORD_FLOWERS102: TaskPrompts = {
  classes: [
    'pink primrose', 'hard-leaved pocket orchid', 'canterbury bells', 'sweet pea', 'english marigold', 'tiger lily', 'moon orchid',
    'bird of paradise', 'monkshood', 'globe thistle', 'snapdragon', "colt's foot", 'king protea', 'spear thistle', 'yellow iris',
    'globe-flower', 'purple coneflower', 'peruvian lily', 'balloon flower', 'giant white arum lily', 'fire lily', 'pincushion flower',
    'fritillary', 'red ginger', 'grape hyacinth', 'corn poppy', 'prince of wales feathers', 'stemless gentian', 'artichoke',
    'sweet william', 'carnation', 'garden phlox', 'love in the mist', 'mexican aster', 'alpine sea holly', 'ruby-lipped cattleya',
    'cape flower', 'great masterwort', 'siam tulip', 'lenten rose', 'barbeton daisy', 'daffodil', 'sword lily', 'poinsettia',
    'bolero deep blue', 'wallflower', 'marigold', 'buttercup', 'oxeye daisy', 'common dandelion', 'petunia', 'wild pansy', 'primula',
    'sunflower', 'pelargonium', 'bishop of llandaff', 'gaura', 'geranium', 'orange dahlia', 'pink-yellow dahlia?', 'cautleya spicata',
    'japanese anemone', 'black-eyed susan', 'silverbush', 'californian poppy', 'osteospermum', 'spring crocus', 'bearded iris',
    'windflower', 'tree poppy', 'gazania', 'azalea', 'water lily', 'rose', 'thorn apple', 'morning glory', 'passion flower', 'lotus',
    'toad lily', 'anthurium', 'frangipani', 'clematis', 'hibiscus', 'columbine', 'desert-rose', 'tree mallow', 'magnolia', 'cyclamen',
    'watercress', 'canna lily', 'hippeastrum', 'bee balm', 'ball moss', 'foxglove', 'bougainvillea', 'camellia', 'mallow',
    'mexican petunia', 'bromelia', 'blanket flower', 'trumpet creeper', 'blackberry lily',
  ],
  templates: ['a photo of a {c}, a type of flower.'],
};

export const PCAM: TaskPrompts = {
  classes: ['lymph node', 'lymph node containing metastatic tumor tissue'],
  templates: ['this is a photo of {c}'],
};

export const FER2013: TaskPrompts = {
  classes: ['angry', 'disgusted', 'fearful', 'happy', 'neutral', 'sad', 'surprised'],
  templates: [
    'a photo of a {c} looking face.', 'a photo of a face showing the emotion: {c}.', 'a photo of a face looking {c}.',
    'a face that looks {c}.', 'they look {c}.', 'look at how {c} they are.',
  ],
};

export const OXFORD_IIIT_PET: TaskPrompts = {
  classes: [
    'abyssinian', 'american_bulldog', 'american_pit_bull_terrier', 'basset_hound', 'beagle', 'bengal', 'birman', 'bombay', 'boxer',
    'british_shorthair', 'chihuahua', 'egyptian_mau', 'english_cocker_spaniel', 'english_setter', 'german_shorthaired', 'great_pyrenees',
    'havanese', 'japanese_chin', 'keeshond', 'leonberger', 'maine_coon', 'miniature_pinscher', 'newfoundland', 'persian', 'pomeranian',
    'pug', 'ragdoll', 'russian_blue', 'saint_bernard', 'samoyed', 'scottish_terrier', 'shiba_inu', 'siamese', 'sphynx',
    'staffordshire_bull_terrier', 'wheaten_terrier', 'yorkshire_terrier',
  ],
  templates: ['a photo of a {c}, a type of pet.'],
};

export const STL10: TaskPrompts = {
  classes: ['airplane', 'bird', 'car', 'cat', 'deer', 'dog', 'horse', 'monkey', 'ship', 'truck'],
  templates: PHOTO_TEMPLATES,
};

export const CIFAR100: TaskPrompts = {
  classes: [
    'apple', 'aquarium_fish', 'baby', 'bear', 'beaver', 'bed', 'bee', 'beetle', 'bicycle', 'bottle', 'bowl', 'boy', 'bridge', 'bus',
    'butterfly', 'camel', 'can', 'castle', 'caterpillar', 'cattle', 'chair', 'chimpanzee', 'clock', 'cloud', 'cockroach', 'couch', 'cra',
    'crocodile', 'cup', 'dinosaur', 'dolphin', 'elephant', 'flatfish', 'forest', 'fox', 'girl', 'hamster', 'house', 'kangaroo', 'keyboard',
    'lamp', 'lawn_mower', 'leopard', 'lion', 'lizard', 'lobster', 'man', 'maple_tree', 'motorcycle', 'mountain', 'mouse', 'mushroom',
    'oak_tree', 'orange', 'orchid', 'otter', 'palm_tree', 'pear', 'pickup_truck', 'pine_tree', 'plain', 'plate', 'poppy', 'porcupine',
    'possum', 'rabbit', 'raccoon', 'ray', 'road', 'rocket', 'rose', 'sea', 'seal', 'shark', 'shrew', 'skunk', 'skyscraper', 'snail',
    'snake', 'spider', 'squirrel', 'streetcar', 'sunflower', 'sweet_pepper', 'table', 'tank', 'telephone', 'television', 'tiger',
    'tractor', 'train', 'trout', 'tulip', 'turtle', 'wardrobe', 'whale', 'willow_tree', 'wolf', 'woman', 'worm',
  ],
  templates: CIFAR_TEMPLATES,
};

export const CIFAR10: TaskPrompts = {
  classes: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
  templates: CIFAR_TEMPLATES,
};

export const FOOD101: TaskPrompts = {
  classes: [
    'apple pie', 'baby back ribs', 'baklava', 'beef carpaccio', 'beef tartare', 'beet salad', 'beignets', 'bibimbap', 'bread pudding',
    'breakfast burrito', 'bruschetta', 'caesar salad', 'cannoli', 'caprese salad', 'carrot cake', 'ceviche', 'cheese plate', 'cheesecake',
    'chicken curry', 'chicken quesadilla', 'chicken wings', 'chocolate cake', 'chocolate mousse', 'churros', 'clam chowder',
    'club sandwich', 'crab cakes', 'creme brulee', 'croque madame', 'cup cakes', 'deviled eggs', 'donuts', 'dumplings', 'edamame',
    'eggs benedict', 'escargots', 'falafel', 'filet mignon', 'fish and chips', 'foie gras', 'french fries', 'french onion soup',
    'french toast', 'fried calamari', 'fried rice', 'frozen yogurt', 'garlic bread', 'gnocchi', 'greek salad', 'grilled cheese sandwich',
    'grilled salmon', 'guacamole', 'gyoza', 'hamburger', 'hot and sour soup', 'hot dog', 'huevos rancheros', 'hummus', 'ice cream',
    'lasagna', 'lobster bisque', 'lobster roll sandwich', 'macaroni and cheese', 'macarons', 'miso soup', 'mussels', 'nachos', 'omelette',
    'onion rings', 'oysters', 'pad thai', 'paella', 'pancakes', 'panna cotta', 'peking duck', 'pho', 'pizza', 'pork chop', 'poutine',
    'prime rib', 'pulled pork sandwich', 'ramen', 'ravioli', 'red velvet cake', 'risotto', 'samosa', 'sashimi', 'scallops',
    'seaweed salad', 'shrimp and grits', 'spaghetti bolognese', 'spaghetti carbonara', 'spring rolls', 'steak', 'strawberry shortcake',
    'sushi', 'tacos', 'takoyaki', 'tiramisu', 'tuna tartare', 'waffles',
  ],
  templates: ['a photo of {c}, a type of food.'],
};

export const FASHION_MNIST: TaskPrompts = {
  classes: ['T - shirt / top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  templates: PHOTO_TEMPLATES,
};

export const EMNIST_LETTERS: TaskPrompts = {
  // FusionBench maps labels 0..25 to the capitals A..Z.
  classes: Array.from({ length: 26 }, (_, i) => String.fromCharCode(65 + i)),
  templates: ['a photo of the digit character: "{c}".'],
};

export const KMNIST: TaskPrompts = {
  classes: ['お', 'き', 'す', 'つ', 'な', 'は', 'ま', 'や', 'れ', 'を'],
  templates: ['a photo of the character {c}.'],
};

export const RENDERED_SST2: TaskPrompts = {
  classes: ['negative', 'positive'],
  templates: ['a {c} review of a movie.'],
};
